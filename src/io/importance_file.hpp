#pragma once
// Per-column importance files for the checkpoint tool's --importance:
// quantkit's safetensors form (one F32 [columns] tensor named as each weight)
// and llama.cpp's legacy imatrix (.dat), whose GGUF tensor names are mapped to
// Hugging Face Llama-family names.

#include <string>
#include <string_view>
#include <vector>

namespace quantkit::io {

struct ImportanceVector {
  std::string name;           // the weight it belongs to, as the checkpoint names it
  std::string file_name;      // as the file names it (a GGUF name for imatrix files)
  std::vector<float> values;  // one per column
};

/// The vectors of `path`: a .safetensors file, or a llama.cpp imatrix, GGUF
/// (each entry's summed squares divided by its token count) or legacy .dat
/// (divided by its call count), as llama-quantize reads them. FileFormatError
/// for a broken file and for per-expert (MoE) GGUF entries.
std::vector<ImportanceVector> read_importance(const std::string& path);

/// The GGUF imatrix form of read_importance, from the file's bytes.
std::vector<ImportanceVector> read_gguf_imatrix(const std::string& path,
                                                const std::vector<char>& bytes);

/// The Hugging Face name of a Llama-family GGUF tensor name
/// ("blk.3.ffn_down.weight" -> "model.layers.3.mlp.down_proj.weight"), or the
/// name unchanged when it is not one.
std::string hugging_face_name(std::string_view gguf_name);

}  // namespace quantkit::io
