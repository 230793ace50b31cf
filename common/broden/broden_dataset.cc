// The Broden reader. The on-disk format, as the original NetDissect writes it (src/joinseg.py) and
// NetDissect-Lite reads it (loader/data_loader.py), is described in FORMAT.md next to this file.
// In short:
//   index.csv     image,split,ih,iw,sh,sw,<cat>...   cells: ';' list of label numbers (whole-image)
//                                                     or PNG paths under images/ (R + 256*G)
//   category.csv  name,first,last,count,frequency     row order = category index; first/last =
//                                                     smallest/largest global label number in the
//                                                     category, count = its number of labels
//   label.csv     number,name,category,frequency,coverage,syns   one row per global label (no 0)
//   c_<cat>.csv   code,number,name,frequency,coverage  code = dense per-category code 1..count
//                                                     (0 = unlabeled, no row); number = global
//                                                     label
#include "common/broden/broden_dataset.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unordered_set>

#ifdef ND_HAVE_LIBDEFLATE
#include <libdeflate.h>
#else
#include <zlib.h>
#endif

#include <png.h>

#include "common/base/digest.h"
#include "common/broden/csv.h"

namespace nd {
namespace {

constexpr int64_t kMaxLabelNumber = 65535;  // R + 256*G
constexpr int64_t kMaxImageSide = 1 << 16;
const char* const kMetaColumns[] = {"image", "split", "ih", "iw", "sh", "sw"};

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

bool IsAllDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Lexically normalises a path relative to images/: drops "." and empty components, applies "..".
// Fails on absolute paths, empty paths and paths that climb out of images/.
StatusOr<std::string> NormalizeImagesPath(const std::string& relative) {
  if (relative.empty()) return InvalidArgument("empty path");
  if (relative[0] == '/') {
    return InvalidArgument("path '" + relative + "' is absolute; paths are relative to images/");
  }
  std::vector<std::string_view> parts;
  std::string_view rest(relative);
  while (!rest.empty()) {
    const size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) {
        return InvalidArgument("path '" + relative + "' escapes the images/ directory");
      }
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  if (parts.empty()) return InvalidArgument("path '" + relative + "' names no file");
  std::string out;
  for (const std::string_view part : parts) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

Status CheckCategoryName(const CsvTable& table, size_t row, int column) {
  const std::string& name = table.cell(row, column);
  if (name.empty()) return table.CellError(row, column, "empty category name");
  if (name == "." || name == ".." || name.find_first_of("/\\") != std::string::npos) {
    return table.CellError(row, column,
                           "'" + name + "' is not usable as a file name (c_" + name + ".csv)");
  }
  for (const char* meta : kMetaColumns) {
    if (name == meta) {
      return table.CellError(row, column, "'" + name + "' collides with the index.csv column");
    }
  }
  return Status::Ok();
}

Status SizeError(const std::string& path, int64_t rows, int64_t cols, int expected_rows,
                 int expected_cols) {
  return InvalidArgument(path + ": size " + std::to_string(rows) + "x" + std::to_string(cols) +
                         " (rows x cols) differs from sh x sw = " + std::to_string(expected_rows) +
                         "x" + std::to_string(expected_cols));
}

// Reads the whole file into *data (reusing its capacity). Missing file: NotFound.
Status ReadWholeFile(const std::string& path, std::vector<uint8_t>* data) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return NotFound(path + ": no such file");
    return IoError(path + ": cannot open: " + std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return IoError(path + ": not a regular file");
  }
  data->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < data->size()) {
    const ssize_t n = ::read(fd, data->data() + done, data->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : 0;
      ::close(fd);
      if (err == 0) return IoError(path + ": file shrank while reading");
      return IoError(path + ": read error: " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return Status::Ok();
}

// ---- Fast PNG decoding --------------------------------------------------------------------------
// Decoding a 112x112 layer through libpng + zlib costs ~200 us, mostly inflate; libdeflate inflates
// the same stream in ~15 us. The fast path below handles the formats Broden uses (non-interlaced
// 8-bit RGB/RGBA, 8/16-bit grayscale, no tRNS) and verifies every chunk CRC and the zlib checksum;
// anything else, including any damage, is left to libpng (DecodePngWithLibpng below).

struct PngHeader {
  uint32_t width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
};

enum class FastPngResult { kDecoded, kWrongSize, kFallback };

uint32_t ReadBigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Inflates a zlib stream into exactly out_size bytes; false on any error or size difference.
bool InflateExact(const uint8_t* in, size_t in_size, uint8_t* out, size_t out_size) {
#ifdef ND_HAVE_LIBDEFLATE
  struct Deleter {
    void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
  };
  thread_local std::unique_ptr<libdeflate_decompressor, Deleter> decompressor(
      libdeflate_alloc_decompressor());
  if (!decompressor) return false;
  size_t actual = 0;
  return libdeflate_zlib_decompress(decompressor.get(), in, in_size, out, out_size, &actual) ==
             LIBDEFLATE_SUCCESS &&
         actual == out_size;
#else
  uLongf actual = static_cast<uLongf>(out_size);
  return ::uncompress(out, &actual, in, static_cast<uLong>(in_size)) == Z_OK && actual == out_size;
#endif
}

inline uint8_t Paeth(int a, int b, int c) {
  const int p = a + b - c;
  const int pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  if (pa <= pb && pa <= pc) return static_cast<uint8_t>(a);
  if (pb <= pc) return static_cast<uint8_t>(b);
  return static_cast<uint8_t>(c);
}

// Reverses the PNG filter of one row in place. prev is the previous unfiltered row (zeros for the
// first row). False on an unknown filter type.
bool Unfilter(int filter, uint8_t* cur, const uint8_t* prev, size_t n, size_t bpp) {
  switch (filter) {
    case 0:
      return true;
    case 1:
      for (size_t i = bpp; i < n; ++i) cur[i] = static_cast<uint8_t>(cur[i] + cur[i - bpp]);
      return true;
    case 2:
      for (size_t i = 0; i < n; ++i) cur[i] = static_cast<uint8_t>(cur[i] + prev[i]);
      return true;
    case 3:
      for (size_t i = 0; i < bpp; ++i) cur[i] = static_cast<uint8_t>(cur[i] + (prev[i] >> 1));
      for (size_t i = bpp; i < n; ++i) {
        cur[i] = static_cast<uint8_t>(cur[i] + ((cur[i - bpp] + prev[i]) >> 1));
      }
      return true;
    case 4:
      for (size_t i = 0; i < bpp; ++i) cur[i] = static_cast<uint8_t>(cur[i] + prev[i]);
      for (size_t i = bpp; i < n; ++i) {
        cur[i] = static_cast<uint8_t>(cur[i] + Paeth(cur[i - bpp], prev[i], prev[i - bpp]));
      }
      return true;
    default:
      return false;
  }
}

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

FastPngResult DecodePngFast(const uint8_t* const data, const size_t size, int expected_rows,
                            int expected_cols, PngHeader* header, std::vector<uint16_t>* out) {
  if (size < 8 || std::memcmp(data, kPngSignature, 8) != 0) return FastPngResult::kFallback;

  // Walk the chunks; remember where the IDAT payloads are.
  thread_local std::vector<std::pair<size_t, size_t>> idat;  // (offset, length)
  idat.clear();
  bool have_header = false, have_end = false;
  size_t pos = 8;
  while (pos + 12 <= size) {
    const uint32_t length = ReadBigEndian32(data + pos);
    if (length > size - pos - 12) return FastPngResult::kFallback;
    const uint8_t* type = data + pos + 4;
    const uint8_t* payload = data + pos + 8;
    if (Crc32(type, length + 4) != ReadBigEndian32(payload + length)) {
      return FastPngResult::kFallback;
    }
    if (std::memcmp(type, "IHDR", 4) == 0) {
      if (have_header || length != 13) return FastPngResult::kFallback;
      header->width = ReadBigEndian32(payload);
      header->height = ReadBigEndian32(payload + 4);
      header->bit_depth = payload[8];
      header->color_type = payload[9];
      if (payload[10] != 0 || payload[11] != 0) return FastPngResult::kFallback;
      header->interlace = payload[12];
      have_header = true;
    } else if (!have_header) {
      return FastPngResult::kFallback;  // IHDR must come first
    } else if (std::memcmp(type, "IDAT", 4) == 0) {
      idat.emplace_back(pos + 8, length);
    } else if (std::memcmp(type, "tRNS", 4) == 0) {
      return FastPngResult::kFallback;  // the fallback turns it into an alpha channel
    } else if (std::memcmp(type, "IEND", 4) == 0) {
      have_end = true;
      break;
    } else if ((type[0] & 0x20) == 0 && std::memcmp(type, "PLTE", 4) != 0) {
      return FastPngResult::kFallback;  // unknown critical chunk
    }
    pos += 12 + length;
  }
  if (!have_header || !have_end || idat.empty()) return FastPngResult::kFallback;

  size_t channels = 0;
  if (header->bit_depth == 8 && header->color_type == 2) channels = 3;
  if (header->bit_depth == 8 && header->color_type == 6) channels = 4;
  if (header->bit_depth == 8 && header->color_type == 0) channels = 1;
  if (header->bit_depth == 16 && header->color_type == 0) channels = 1;
  if (channels == 0 || header->interlace != 0) return FastPngResult::kFallback;
  if (header->width != static_cast<uint32_t>(expected_cols) ||
      header->height != static_cast<uint32_t>(expected_rows)) {
    return FastPngResult::kWrongSize;
  }

  // The zlib stream: the IDAT payloads concatenated (copied only when there are several).
  thread_local std::vector<uint8_t> joined;
  const uint8_t* stream = data + idat[0].first;
  size_t stream_size = idat[0].second;
  if (idat.size() > 1) {
    joined.clear();
    for (const auto& [offset, length] : idat) {
      joined.insert(joined.end(), data + offset, data + offset + length);
    }
    stream = joined.data();
    stream_size = joined.size();
  }

  const size_t bpp = channels * (header->bit_depth / 8);  // bytes per pixel
  const size_t rows = header->height, cols = header->width;
  const size_t row_bytes = cols * bpp;
  const size_t stride = row_bytes + 1;  // filter byte + pixels
  thread_local std::vector<uint8_t> raw;
  thread_local std::vector<uint8_t> zero_row;
  raw.resize(rows * stride);
  if (zero_row.size() < row_bytes) zero_row.assign(row_bytes, 0);
  if (!InflateExact(stream, stream_size, raw.data(), raw.size())) return FastPngResult::kFallback;

  out->resize(rows * cols);
  uint16_t* dst = out->data();
  const uint8_t* prev = zero_row.data();
  for (size_t r = 0; r < rows; ++r) {
    uint8_t* cur = raw.data() + r * stride + 1;
    if (!Unfilter(cur[-1], cur, prev, row_bytes, bpp)) return FastPngResult::kFallback;
    if (header->bit_depth == 16) {
      for (size_t x = 0; x < cols; ++x)
        *dst++ = static_cast<uint16_t>((cur[2 * x] << 8) | cur[2 * x + 1]);
    } else if (channels == 1) {
      dst = std::copy(cur, cur + cols, dst);
    } else {
      // PNG order is R,G,B(,A).
      const uint8_t* px = cur;
      for (size_t x = 0; x < cols; ++x, px += channels) {
        *dst++ = static_cast<uint16_t>(uint32_t{px[0]} + 256u * uint32_t{px[1]});
      }
    }
    prev = cur;
  }
  return FastPngResult::kDecoded;
}

// ---- The fallback: libpng ----------------------------------------------------------------------
// Every PNG the fast path does not take. libpng is configured exactly as OpenCV 4.6's PNG decoder
// configures it for cv::imdecode(..., IMREAD_UNCHANGED) (modules/imgcodecs/src/grfmt_png.cpp),
// which this reader used until the stages stopped linking OpenCV, so the same files decode to the
// same values: no gamma or colour management, 16 bits kept, palette expanded to RGB (RGBA with
// tRNS), gray below 8 bits scaled to 8, tRNS of RGB turned into alpha, of gray ignored, gray+alpha
// made RGBA. Only the channel order differs (R,G,B here, B,G,R in OpenCV), which the mapping
// follows.

// OpenCV refuses images above 2^30 pixels before it allocates (CV_IO_MAX_IMAGE_PIXELS's default).
constexpr uint64_t kMaxFallbackPixels = uint64_t{1} << 30;

// The state libpng's callbacks see (png_get_io_ptr / png_get_error_ptr).
struct LibpngSource {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char error[160] = {};  // libpng's last error message, for the Status
};

void LibpngRead(png_structp png, png_bytep out, size_t n) {
  auto* source = static_cast<LibpngSource*>(png_get_io_ptr(png));
  if (n > source->size - source->pos) png_error(png, "PNG input buffer is incomplete");
  std::memcpy(out, source->data + source->pos, n);
  source->pos += n;
}

// Keeps the message and unwinds to the setjmp of LibpngReadInfo or LibpngReadRows. No C++ object
// with a destructor lives in the frames it unwinds (libpng's C frames and these callbacks).
[[noreturn]] void LibpngError(png_structp png, png_const_charp message) {
  auto* source = static_cast<LibpngSource*>(png_get_error_ptr(png));
  std::snprintf(source->error, sizeof(source->error), "%s", message != nullptr ? message : "");
  png_longjmp(png, 1);
}

// OpenCV left libpng's default handler, which printed warnings (an ancillary chunk's bad CRC,
// extra compressed data) to stderr and went on; they are dropped here.
void LibpngWarning(png_structp, png_const_charp) {}

// Reads the signature and the chunks up to the first IDAT. False after a libpng error.
bool LibpngReadInfo(png_structp png, png_infop info) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  return true;
}

// Sets OpenCV's transformations for an image of `channels` channels and reads every row (and the
// chunks after the image, up to IEND) into `rows`, each row_bytes long. False after a libpng
// error.
bool LibpngReadRows(png_structp png, png_infop info, int channels, size_t row_bytes,
                    png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  if (channels < 4) {
    png_set_strip_alpha(png);
  } else {
    png_set_tRNS_to_alpha(png);
  }
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(png);
  }
  // OpenCV adds png_set_bgr for colour images; this reader takes R,G,B as they are.
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && channels > 1) png_set_gray_to_rgb(png);
  if (channels == 1) png_set_rgb_to_gray(png, 1, 0.299, 0.587);  // a no-op on gray, as in OpenCV
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != row_bytes) png_error(png, "unexpected row size");
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

Status DecodePngWithLibpng(const uint8_t* data, size_t size, const std::string& path,
                           int expected_rows, int expected_cols, std::vector<uint16_t>* out) {
  LibpngSource source;
  source.data = data;
  source.size = size;
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, LibpngError, LibpngWarning);
  png_infop info = png != nullptr ? png_create_info_struct(png) : nullptr;
  struct Destroy {
    png_structp* png;
    png_infop* info;
    ~Destroy() {
      if (*png != nullptr) png_destroy_read_struct(png, info, nullptr);
    }
  } destroy{&png, &info};
  if (png == nullptr || info == nullptr) {
    return Internal(path + ": libpng: cannot allocate its read structures");
  }
  png_set_read_fn(png, &source, LibpngRead);
  const auto failed = [&]() {
    std::string why = source.error;
    std::replace(why.begin(), why.end(), '\n', ' ');
    std::replace(why.begin(), why.end(), '\r', ' ');
    return DataLoss(path + ": cannot read or decode as an image (libpng: " + why + ")");
  };
  if (!LibpngReadInfo(png, info)) return failed();

  const int64_t rows = png_get_image_height(png, info), cols = png_get_image_width(png, info);
  if (rows != expected_rows || cols != expected_cols) {
    return SizeError(path, rows, cols, expected_rows, expected_cols);
  }
  if (static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols) > kMaxFallbackPixels) {
    return DataLoss(path + ": cannot decode: " + std::to_string(rows) + "x" + std::to_string(cols) +
                    " pixels are more than 2^30");
  }
  // The channels OpenCV gives the file with IMREAD_UNCHANGED (PngDecoder::readHeader).
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  int channels = 1;
  if (color_type == PNG_COLOR_TYPE_RGB || color_type == PNG_COLOR_TYPE_PALETTE) {
    channels = png_get_valid(png, info, PNG_INFO_tRNS) != 0 ? 4 : 3;
  } else if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA || color_type == PNG_COLOR_TYPE_RGB_ALPHA) {
    channels = 4;
  }
  const size_t sample_bytes = bit_depth == 16 ? 2 : 1;
  const size_t row_bytes = static_cast<size_t>(cols) * channels * sample_bytes;
  // The whole image is read even in a format refused below, so that a damaged file is DataLoss
  // whatever its format, as it was through OpenCV.
  thread_local std::vector<uint8_t> pixels;
  thread_local std::vector<png_bytep> row_pointers;
  pixels.resize(static_cast<size_t>(rows) * row_bytes);
  row_pointers.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) row_pointers[r] = pixels.data() + r * row_bytes;
  if (!LibpngReadRows(png, info, channels, row_bytes, row_pointers.data())) return failed();

  out->resize(static_cast<size_t>(rows) * static_cast<size_t>(cols));
  uint16_t* dst = out->data();
  const uint8_t* src = pixels.data();
  const size_t n = out->size();
  if (sample_bytes == 1 && (channels == 3 || channels == 4)) {
    for (size_t p = 0; p < n; ++p, src += channels) {
      dst[p] = static_cast<uint16_t>(uint32_t{src[0]} + 256u * uint32_t{src[1]});  // R + 256*G
    }
  } else if (sample_bytes == 1 && channels == 1) {
    std::copy(src, src + n, dst);
  } else if (sample_bytes == 2 && channels == 1) {
    for (size_t p = 0; p < n; ++p, src += 2) {
      dst[p] = static_cast<uint16_t>((src[0] << 8) | src[1]);  // PNG samples are big-endian
    }
  } else {
    return InvalidArgument(path + ": unsupported pixel format (" +
                           std::to_string(8 * sample_bytes) + "-bit, " + std::to_string(channels) +
                           " channels); expected 8-bit RGB/RGBA or 8/16-bit grayscale");
  }
  return Status::Ok();
}

}  // namespace

BrodenOptions BrodenOptionsFor(const DatasetConfig& config) {
  BrodenOptions o;
  o.categories = config.categories;
  o.on_bad_row = config.on_bad_row == "fail" ? BadRowPolicy::kFail : BadRowPolicy::kSkip;
  return o;
}

// category.csv: row order is the category index.
Status BrodenDataset::ReadCategoryCsv(const std::string& dir) {
  ND_ASSIGN_OR_RETURN(const CsvTable table, CsvTable::ReadFile(dir + "category.csv"));
  ND_ASSIGN_OR_RETURN(const int c_name, table.RequireColumn("name"));
  ND_ASSIGN_OR_RETURN(const int c_first, table.RequireColumn("first"));
  ND_ASSIGN_OR_RETURN(const int c_last, table.RequireColumn("last"));
  ND_ASSIGN_OR_RETURN(const int c_count, table.RequireColumn("count"));
  ND_ASSIGN_OR_RETURN(const int c_frequency, table.RequireColumn("frequency"));
  if (table.num_rows() == 0) {
    return InvalidArgument(table.name() + ":" + std::to_string(table.header_line()) +
                           ": no categories");
  }
  for (size_t r = 0; r < table.num_rows(); ++r) {
    BrodenCategory category;
    ND_RETURN_IF_ERROR(CheckCategoryName(table, r, c_name));
    category.name = table.cell(r, c_name);
    if (CategoryIndex(category.name) >= 0) {
      return table.CellError(r, c_name, "duplicate category '" + category.name + "'");
    }
    ND_ASSIGN_OR_RETURN(category.first, table.GetInt(r, c_first));
    ND_ASSIGN_OR_RETURN(category.last, table.GetInt(r, c_last));
    ND_ASSIGN_OR_RETURN(category.count, table.GetInt(r, c_count));
    ND_ASSIGN_OR_RETURN(category.frequency, table.GetInt(r, c_frequency));
    categories_.push_back(std::move(category));
  }
  return Status::Ok();
}

// Selection.
Status BrodenDataset::SelectCategories(const BrodenOptions& options, const std::string& dir) {
  if (options.categories.empty()) {
    for (BrodenCategory& category : categories_) category.selected = true;
  }
  for (const std::string& name : options.categories) {
    const int c = CategoryIndex(name);
    if (c < 0) {
      std::vector<std::string> known;
      for (const BrodenCategory& category : categories_) known.push_back(category.name);
      return InvalidArgument("broden: unknown category '" + name + "' selected; " + dir +
                             "category.csv has: " + JoinNames(known));
    }
    categories_[c].selected = true;
  }
  return Status::Ok();
}

// label.csv: one row per global label number; slot 0 stays "unlabeled".
Status BrodenDataset::ReadLabelCsv(const std::string& dir) {
  ND_ASSIGN_OR_RETURN(const CsvTable table, CsvTable::ReadFile(dir + "label.csv"));
  ND_ASSIGN_OR_RETURN(const int c_number, table.RequireColumn("number"));
  ND_ASSIGN_OR_RETURN(const int c_name, table.RequireColumn("name"));
  ND_ASSIGN_OR_RETURN(const int c_frequency, table.RequireColumn("frequency"));
  ND_ASSIGN_OR_RETURN(const int c_coverage, table.RequireColumn("coverage"));
  if (table.num_rows() == 0) {
    return InvalidArgument(table.name() + ":" + std::to_string(table.header_line()) +
                           ": no labels");
  }
  std::vector<int64_t> numbers(table.num_rows());
  int64_t max_number = 0;
  for (size_t r = 0; r < table.num_rows(); ++r) {
    ND_ASSIGN_OR_RETURN(numbers[r], table.GetIntInRange(r, c_number, 1, kMaxLabelNumber));
    max_number = std::max(max_number, numbers[r]);
  }
  labels_.resize(static_cast<size_t>(max_number) + 1);
  for (size_t k = 0; k < labels_.size(); ++k) {
    labels_[k].number = static_cast<int>(k);
    labels_[k].coverage.assign(static_cast<int>(categories_.size()), -1.0);
  }
  for (size_t r = 0; r < table.num_rows(); ++r) {
    BrodenLabel& label = labels_[numbers[r]];
    if (label.defined) {
      return table.CellError(r, c_number, "duplicate label number " + std::to_string(numbers[r]));
    }
    label.defined = true;
    label.name = table.cell(r, c_name);
    ND_ASSIGN_OR_RETURN(label.frequency, table.GetIntInRange(r, c_frequency, 0, INT64_MAX));
    ND_ASSIGN_OR_RETURN(label.label_coverage, table.GetDouble(r, c_coverage));
    if (label.label_coverage < 0) return table.CellError(r, c_coverage, "negative coverage");
  }
  pixel_value_ok_.assign(kMaxLabelNumber + 1, 0);  // every uint16 value: no bounds check
  for (size_t k = 0; k < labels_.size(); ++k) pixel_value_ok_[k] = labels_[k].defined;
  pixel_value_ok_[0] = 1;  // unlabeled
  return Status::Ok();
}

// c_<cat>.csv of each selected category: per-category coverage.
Status BrodenDataset::ReadCategoryCoverage(const std::string& dir) {
  for (int c = 0; c < static_cast<int>(categories_.size()); ++c) {
    if (!categories_[c].selected) continue;
    ND_ASSIGN_OR_RETURN(const CsvTable table,
                        CsvTable::ReadFile(dir + "c_" + categories_[c].name + ".csv"));
    ND_ASSIGN_OR_RETURN(const int c_code, table.RequireColumn("code"));
    ND_ASSIGN_OR_RETURN(const int c_number, table.RequireColumn("number"));
    ND_ASSIGN_OR_RETURN(const int c_coverage, table.RequireColumn("coverage"));
    std::unordered_set<int64_t> codes;
    for (size_t r = 0; r < table.num_rows(); ++r) {
      ND_ASSIGN_OR_RETURN(const int64_t code, table.GetIntInRange(r, c_code, 1, INT64_MAX));
      if (!codes.insert(code).second) {
        return table.CellError(r, c_code, "duplicate code " + std::to_string(code));
      }
      ND_ASSIGN_OR_RETURN(const int64_t number,
                          table.GetIntInRange(r, c_number, 1, kMaxLabelNumber));
      if (number >= num_labels() || !labels_[number].defined) {
        return table.CellError(r, c_number,
                               "label " + std::to_string(number) + " has no row in label.csv");
      }
      BrodenLabel& label = labels_[number];
      if (label.coverage[c] >= 0) {
        return table.CellError(r, c_number, "duplicate label " + std::to_string(number));
      }
      ND_ASSIGN_OR_RETURN(const double coverage, table.GetDouble(r, c_coverage));
      if (coverage < 0) return table.CellError(r, c_coverage, "negative coverage");
      label.coverage[c] = coverage;
    }
  }
  return Status::Ok();
}

// Primary category (SPEC.md §2 step 4): largest coverage among the selected categories where
// the label has a row; ">=" lets the later category win ties, as NetDissect-Lite's
// max((coverage, index)) does.
void BrodenDataset::AssignPrimaryCategories() {
  for (size_t k = 1; k < labels_.size(); ++k) {
    BrodenLabel& label = labels_[k];
    double best = -1;
    for (int c = 0; c < static_cast<int>(categories_.size()); ++c) {
      if (!categories_[c].selected || label.coverage[c] < 0) continue;
      if (label.coverage[c] >= best) {
        best = label.coverage[c];
        label.primary_category = c;
      }
    }
  }
}

// index.csv. A malformed data row is skipped and recorded (on_bad_row = kSkip) or stops the
// open (kFail); a bad header stops it either way.
Status BrodenDataset::ReadIndexCsv(const std::string& dir, const BrodenOptions& options) {
  const CsvBadRowPolicy policy =
      options.on_bad_row == BadRowPolicy::kSkip ? CsvBadRowPolicy::kSkip : CsvBadRowPolicy::kFail;
  ND_ASSIGN_OR_RETURN(const CsvTable table, CsvTable::ReadFile(dir + "index.csv", policy));
  IndexColumns columns;
  ND_ASSIGN_OR_RETURN(columns.image, table.RequireColumn("image"));
  ND_ASSIGN_OR_RETURN(columns.split, table.RequireColumn("split"));
  ND_ASSIGN_OR_RETURN(columns.ih, table.RequireColumn("ih"));
  ND_ASSIGN_OR_RETURN(columns.iw, table.RequireColumn("iw"));
  ND_ASSIGN_OR_RETURN(columns.sh, table.RequireColumn("sh"));
  ND_ASSIGN_OR_RETURN(columns.sw, table.RequireColumn("sw"));
  columns.category.assign(static_cast<int>(categories_.size()), -1);
  for (int c = 0; c < static_cast<int>(categories_.size()); ++c) {
    if (!categories_[c].selected) continue;
    ND_ASSIGN_OR_RETURN(columns.category[c], table.RequireColumn(categories_[c].name));
  }
  for (const CsvBadRow& bad : table.bad_rows()) {
    skipped_rows_.push_back({bad.line, bad.message});
  }
  images_.reserve(table.num_rows());
  for (size_t r = 0; r < table.num_rows(); ++r) {
    BrodenImage image;
    const Status parsed = ParseIndexRow(table, r, columns, &image);
    if (!parsed.ok()) {
      if (options.on_bad_row == BadRowPolicy::kFail) return parsed;
      skipped_rows_.push_back({table.line(r), parsed.message()});
      continue;
    }
    image.row = static_cast<int>(images_.size());
    images_.push_back(std::move(image));
  }
  std::sort(skipped_rows_.begin(), skipped_rows_.end(),
            [](const SkippedIndexRow& a, const SkippedIndexRow& b) { return a.line < b.line; });
  return Status::Ok();
}

StatusOr<BrodenDataset> BrodenDataset::Open(const std::string& root, const BrodenOptions& options) {
  BrodenDataset ds;
  ds.root_ = root;
  while (ds.root_.size() > 1 && ds.root_.back() == '/') ds.root_.pop_back();
  const std::string dir = ds.root_ + "/";
  ND_RETURN_IF_ERROR(ds.ReadCategoryCsv(dir));
  ND_RETURN_IF_ERROR(ds.SelectCategories(options, dir));
  ND_RETURN_IF_ERROR(ds.ReadLabelCsv(dir));
  ND_RETURN_IF_ERROR(ds.ReadCategoryCoverage(dir));
  ds.AssignPrimaryCategories();
  ND_RETURN_IF_ERROR(ds.ReadIndexCsv(dir, options));
  return ds;
}

Status BrodenDataset::ParseIndexRow(const CsvTable& table, size_t r, const IndexColumns& columns,
                                    BrodenImage* out) const {
  BrodenImage& image = *out;
  const int num_categories = static_cast<int>(categories_.size());
  image.line = table.line(r);
  image.image = table.cell(r, columns.image);
  {
    const StatusOr<std::string> normalized = NormalizeImagesPath(image.image);
    if (!normalized.ok()) return table.CellError(r, columns.image, normalized.status().message());
  }
  image.split = table.cell(r, columns.split);
  ND_ASSIGN_OR_RETURN(image.ih, table.GetIntInRange(r, columns.ih, 1, kMaxImageSide));
  ND_ASSIGN_OR_RETURN(image.iw, table.GetIntInRange(r, columns.iw, 1, kMaxImageSide));
  ND_ASSIGN_OR_RETURN(image.sh, table.GetIntInRange(r, columns.sh, 1, kMaxImageSide));
  ND_ASSIGN_OR_RETURN(image.sw, table.GetIntInRange(r, columns.sw, 1, kMaxImageSide));
  image.pixel_layers.resize(num_categories);
  image.scalar_labels.resize(num_categories);
  for (int c = 0; c < num_categories; ++c) {
    const int column = columns.category[c];
    if (column < 0) continue;
    const std::string& cell = table.cell(r, column);
    if (cell.empty()) continue;
    size_t start = 0;
    while (true) {
      const size_t semicolon = cell.find(';', start);
      const std::string item = cell.substr(
          start, semicolon == std::string::npos ? std::string::npos : semicolon - start);
      if (item.empty()) {
        return table.CellError(r, column, "empty item in '" + cell + "'");
      }
      if (IsAllDigits(item)) {
        int64_t number = 0;
        if (!ParseInt64(item, &number) || number >= num_labels() || !labels_[number].defined) {
          return table.CellError(r, column, "label " + item + " has no row in label.csv");
        }
        image.scalar_labels[c].push_back(static_cast<int>(number));
      } else {
        const StatusOr<std::string> normalized = NormalizeImagesPath(item);
        if (!normalized.ok()) {
          return table.CellError(r, column, normalized.status().message());
        }
        image.pixel_layers[c].push_back(item);
      }
      if (semicolon == std::string::npos) break;
      start = semicolon + 1;
    }
  }
  return Status::Ok();
}

int BrodenDataset::CategoryIndex(const std::string& name) const {
  for (size_t c = 0; c < categories_.size(); ++c) {
    if (categories_[c].name == name) return static_cast<int>(c);
  }
  return -1;
}

StatusOr<std::string> BrodenDataset::ResolveImagePath(const std::string& relative) const {
  ND_ASSIGN_OR_RETURN(const std::string normalized, NormalizeImagesPath(relative));
  return root_ + "/images/" + normalized;
}

StatusOr<ImageLabels> BrodenDataset::ReadLabels(size_t i) const {
  if (i >= images_.size()) {
    return InvalidArgument("broden: image " + std::to_string(i) + " out of range; index.csv has " +
                           std::to_string(images_.size()) + " rows");
  }
  const BrodenImage& image = images_[i];
  const std::string where = root_ + "/index.csv:" + std::to_string(image.line);
  ImageLabels out;
  out.sh = image.sh;
  out.sw = image.sw;
  const size_t num_pixels = static_cast<size_t>(image.sh) * image.sw;
  for (size_t c = 0; c < categories_.size(); ++c) {
    if (!categories_[c].selected) continue;
    const std::string context = " (" + where + ", column '" + categories_[c].name + "')";
    for (const std::string& layer : image.pixel_layers[c]) {
      StatusOr<std::string> path = ResolveImagePath(layer);
      if (!path.ok()) {
        return path.status().WithContext(where + ": column '" + categories_[c].name + "'");
      }
      out.layers.emplace_back();
      std::vector<uint16_t>& labels = out.layers.back();
      const Status decoded = DecodeLabelPng(*path, image.sh, image.sw, &labels);
      if (!decoded.ok()) return Status(decoded.code(), decoded.message() + context);
      for (size_t p = 0; p < num_pixels; ++p) {
        const uint16_t v = labels[p];
        if (!pixel_value_ok_[v]) {
          return InvalidArgument(*path + ": pixel (row " + std::to_string(p / image.sw) + ", col " +
                                 std::to_string(p % image.sw) + ") has label " + std::to_string(v) +
                                 " with no row in label.csv" + context);
        }
      }
      out.layer_category.push_back(static_cast<int>(c));
    }
    for (int number : image.scalar_labels[c]) {
      out.scalar_labels.push_back(number);
      out.scalar_category.push_back(static_cast<int>(c));
    }
  }
  return out;
}

Status DecodeLabelPng(const std::string& path, int expected_rows, int expected_cols,
                      std::vector<uint16_t>* out, bool* used_fast_path) {
  if (used_fast_path != nullptr) *used_fast_path = false;
  // One buffer per thread for the file bytes: no allocation per call once warm.
  thread_local std::vector<uint8_t> file;
  ND_RETURN_IF_ERROR(ReadWholeFile(path, &file));
  return DecodeLabelPngBytes(file.data(), file.size(), path, expected_rows, expected_cols, out,
                             used_fast_path);
}

Status DecodeLabelPngBytes(const uint8_t* data, size_t size, const std::string& path,
                           int expected_rows, int expected_cols, std::vector<uint16_t>* out,
                           bool* used_fast_path) {
  if (used_fast_path != nullptr) *used_fast_path = false;
  if (expected_rows <= 0 || expected_cols <= 0) {
    return InvalidArgument(path + ": expected size " + std::to_string(expected_rows) + "x" +
                           std::to_string(expected_cols) + " is not positive");
  }
  if (size == 0) return DataLoss(path + ": empty file");
  // Fast path: plain 8-bit RGB/RGBA or 8/16-bit grayscale PNGs, i.e. every Broden layer.
  PngHeader header;
  const FastPngResult fast = DecodePngFast(data, size, expected_rows, expected_cols, &header, out);
  if (fast == FastPngResult::kDecoded) {
    if (used_fast_path != nullptr) *used_fast_path = true;
    return Status::Ok();
  }
  if (fast == FastPngResult::kWrongSize) {
    return SizeError(path, static_cast<int64_t>(header.height), static_cast<int64_t>(header.width),
                     expected_rows, expected_cols);
  }

  // A PNG whose header names another size is refused before the fallback allocates for it (a
  // damaged or hostile header could claim gigapixels).
  if (size >= 24 && std::memcmp(data, kPngSignature, 8) == 0 &&
      std::memcmp(data + 12, "IHDR", 4) == 0) {
    const uint32_t width = ReadBigEndian32(data + 16), height = ReadBigEndian32(data + 20);
    if (width != static_cast<uint32_t>(expected_cols) ||
        height != static_cast<uint32_t>(expected_rows)) {
      return SizeError(path, height, width, expected_rows, expected_cols);
    }
  }
  // OpenCV's limit (an int size), kept so that the same files are refused.
  if (size > static_cast<size_t>(INT32_MAX)) return DataLoss(path + ": file too large");

  // Everything else (palette, interlaced, tRNS, other depths, damaged files) goes through libpng,
  // set up as OpenCV's PNG decoder with IMREAD_UNCHANGED (what this reader used before).
  return DecodePngWithLibpng(data, size, path, expected_rows, expected_cols, out);
}

}  // namespace nd
