// llama.cpp imatrix names: every Llama-family GGUF block tensor maps to its
// Hugging Face name; anything else is left as it is (and then matches no
// weight, which --importance refuses by name).
#include <gtest/gtest.h>

#include "io/importance_file.hpp"

namespace quantkit::io {
namespace {

TEST(ImportanceFile, GgufNamesMapToHuggingFaceNames) {
  const std::pair<const char*, const char*> names[] = {
      {"blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"},
      {"blk.12.attn_k.weight", "model.layers.12.self_attn.k_proj.weight"},
      {"blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight"},
      {"blk.3.attn_output.weight", "model.layers.3.self_attn.o_proj.weight"},
      {"blk.31.ffn_gate.weight", "model.layers.31.mlp.gate_proj.weight"},
      {"blk.31.ffn_up.weight", "model.layers.31.mlp.up_proj.weight"},
      {"blk.31.ffn_down.weight", "model.layers.31.mlp.down_proj.weight"},
      {"output.weight", "lm_head.weight"},
      {"token_embd.weight", "model.embed_tokens.weight"},
  };
  for (const auto& [gguf, hugging_face] : names) EXPECT_EQ(hugging_face_name(gguf), hugging_face);
  for (const char* kept : {"blk.x.attn_q.weight", "blk..attn_q.weight", "blk.0.attn_qkv.weight",
                           "blk.0.attn_q.bias", "model.layers.0.mlp.up_proj.weight"}) {
    EXPECT_EQ(hugging_face_name(kept), kept);
  }
}

}  // namespace
}  // namespace quantkit::io
