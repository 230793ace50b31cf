// Reading a NumPy .npy file holding one 2-D matrix (the [[view]] basis = "file" matrix W).
//
// Format (NumPy's "NEP 1" / numpy.lib.format, versions 1.0, 2.0 and 3.0): the magic "\x93NUMPY",
// one byte major and one byte minor version, the header length (uint16 little-endian for 1.x,
// uint32 for 2.x and 3.x), an ASCII (3.x: UTF-8) Python dict literal
//   {'descr': '<f4', 'fortran_order': False, 'shape': (M, K), }
// padded with spaces and a newline, then the data. Accepted here: descr '<f4' or '<f8' (also '=' on
// this little-endian machine, and '|'-less forms NumPy writes), fortran_order False, a shape of
// exactly two positive dimensions, and exactly M*K values after the header (no more, no less).
// Values are widened to double exactly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"

namespace nd {

struct NpyMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<double> values;  // row-major (C order), rows*cols
  std::string dtype;           // "float32" | "float64": what the file held
};

// Errors: NotFound / IoError naming the file; InvalidArgument naming the file and what is wrong
// ("W.npy: dtype '<i8' is not float32 or float64", "W.npy: shape (3,) is not 2-D",
// "W.npy: fortran_order True: save the matrix in C order", "W.npy: 8 bytes of data, 24 expected").
[[nodiscard]] StatusOr<NpyMatrix> ReadNpyMatrix(const std::string& path);

// Writes `m` as a version 1.0 .npy file of float64 (tests and tools); atomically.
[[nodiscard]] Status WriteNpyMatrix(const std::string& path, const NpyMatrix& m);

}  // namespace nd
