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

/// The vectors of `path`: a .safetensors file, or a legacy llama.cpp imatrix
/// (each entry's summed squares divided by its call count, as llama-quantize
/// reads it). FileFormatError for a broken file, and for a GGUF imatrix (not
/// read: llama-imatrix --output-format dat writes the legacy form).
std::vector<ImportanceVector> read_importance(const std::string& path);

/// The Hugging Face name of a Llama-family GGUF tensor name
/// ("blk.3.ffn_down.weight" -> "model.layers.3.mlp.down_proj.weight"), or the
/// name unchanged when it is not one.
std::string hugging_face_name(std::string_view gguf_name);

}  // namespace quantkit::io
