// Helpers shared by the tests: an independent, deliberately plain pcap reader and writer, and
// temporary files. Independent of stages/ so that a bug there cannot hide itself.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "pipeline/engine.h"

namespace vei::test {

struct RawRecord {
  uint32_t sec = 0;
  uint32_t frac = 0;  // µs or ns, as the file says
  uint32_t caplen = 0;
  uint32_t len = 0;
  std::vector<unsigned char> bytes;
  int64_t ts_ns(bool nanos) const { return int64_t{sec} * 1'000'000'000 + (nanos ? frac : int64_t{frac} * 1000); }
};

struct RawFile {
  bool nanos = false;
  uint32_t snaplen = 0;
  uint32_t linktype = 0;
  std::vector<RawRecord> records;
};

// Reads a little-endian classic pcap as written by veipipe; throws on anything unexpected.
RawFile read_raw(const std::filesystem::path& path);
void write_raw(const std::filesystem::path& path, const RawFile& file);

// A frame of `size` bytes whose content encodes `tag`, so records can be told apart.
std::vector<unsigned char> tagged_frame(uint32_t tag, size_t size);
// The tag of a tagged frame (its first four bytes, little-endian).
uint32_t tag_of(const RawRecord& record);
// A trace of `count` tagged frames of `size` bytes, tags first_tag.., `gap_us` apart from
// 1,700,000,000 s (microsecond Ethernet pcap).
RawFile tagged_trace(uint32_t count, uint32_t gap_us, size_t size = 64, uint32_t first_tag = 0);

// A directory removed with everything in it when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A veth pair with unique names (`prefix`, pid, counter), deleted when the object goes (deleting one
// end removes both). Needs root and `ip`: see veth_unavailable().
class Veth {
 public:
  explicit Veth(const std::string& prefix, bool up = true);
  ~Veth() { remove(); }
  Veth(const Veth&) = delete;
  Veth& operator=(const Veth&) = delete;

  static int set_up(const std::string& name, bool up);
  void remove();  // deletes the pair now
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }

 private:
  std::string a_, b_;
  bool created_ = false;
};

// Why veth pairs cannot be made here ("not root", ...), empty when they can.
std::string veth_unavailable();

// The message of the std::runtime_error f throws, empty when it throws none.
std::string error_of(const std::function<void()>& f);

// Runs a pipeline description quietly; returns the exit status (0, 1, 2, 3) like `veipipe run`.
int run_pipeline(const std::string& description, Stats* stats = nullptr);

}  // namespace vei::test
