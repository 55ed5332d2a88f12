#pragma once
// Observer states as safetensors files: a calibration result is an artifact
// that can be stored, shipped and merged later. Buffers are stored as tensors,
// the kind and settings in __metadata__ ("observer.kind", "observer.<name>").
// Round trips are exact.
#include <string>

#include "quantkit/observers.hpp"

namespace quantkit::io {

/// Written atomically (temporary file, then rename).
void save_observer_state(const std::string& path, const ObserverState& state);
/// FileFormatError when the file holds no observer state.
ObserverState load_observer_state(const std::string& path);

}  // namespace quantkit::io
