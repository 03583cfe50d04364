// The `file` sink (stages/file.h) on its own: a sheet of several pieces whose labels fail part way.
// The capture holds every piece, so the statistics count every piece, whatever the labels managed.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/sheet.h"
#include "stages/file.h"

using namespace vei;

namespace {

// A batch of `count` one-byte records of `source`, 1 ms apart from `ts`, headers written.
Batch* filled(BatchPool& pool, uint16_t source, size_t count, int64_t ts) {
  Batch* b = pool.acquire();
  b->source = source;
  for (size_t i = 0; i < count; ++i, ts += 1'000'000) {
    pcap::write_record_header(b->data() + b->used, ts, pcap::Precision::us, 1, 1);
    b->records.push_back({ts, i, static_cast<uint32_t>(b->used), 1, 1, source, 0});
    b->used += record_header_size + 1;
  }
  return b;
}

// Files written while it lives are limited to `bytes`: a longer write fails with EFBIG, as a full
// disk fails one with ENOSPC, and SIGXFSZ is ignored so that the write returns.
struct FileSizeLimit {
  explicit FileSizeLimit(rlim_t bytes) : old_handler(std::signal(SIGXFSZ, SIG_IGN)) {
    getrlimit(RLIMIT_FSIZE, &old);
    rlimit limit = old;
    limit.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
  }
  rlimit old{};
  void (*old_handler)(int);
};

}  // namespace

TEST_CASE("file: labels that fail on a sheet's first piece leave every written record counted") {
  const auto dir = std::filesystem::temp_directory_path() / ("veipipe-file-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string labels = (dir / "labels.csv").string();
  BatchPool pool(4, 4096);
  Batch* first = filled(pool, 1, 40, 1'000'000'000);
  Batch* second = filled(pool, 2, 40, 1'000'500'000);
  {
    // The capture goes to /dev/null, which no file size limit reaches; the labels stop after 512
    // bytes, a few lines into the first piece.
    FileWriter writer("/dev/null", pcap::Precision::us, 65535, 1,
                      LabelsOptions{labels, {"bg", "a", "b"}, {"bg.pcap", "a.pcap", "b.pcap"}, {"pcap", "pcap", "pcap"}});
    const FileSizeLimit limit(512);
    const std::vector<Piece> pieces{{first, 0, 20}, {second, 0, 20}, {first, 20, 20}, {second, 20, 20}};
    const std::string message = "labels " + labels + ": File too large";
    CHECK_THROWS_WITH_AS(writer.consume(pieces), doctest::Contains(message.c_str()), std::runtime_error);
    CHECK(writer.stats().packets == 80);
    CHECK(writer.stats().bytes == 80 * (record_header_size + 1));
  }
  // What the labels keep are whole lines, the first of them the first piece's.
  const auto size = std::filesystem::file_size(labels);
  CHECK(size > 0);
  CHECK(size <= 512);
  pool.release(first);
  pool.release(second);
  std::filesystem::remove_all(dir);
}
