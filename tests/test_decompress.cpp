// The decompressing pump's ownership (core/decompress.h): a compressed capture on a pipe whose writer
// stays silent leaves the pump waiting for input; a stop of the run ends the reader's wait, and
// dropping the source joins the pump at once, leaving no thread and no descriptor behind. The bytes
// themselves are checked against gzip, zstd and tcpdump in tests/compress_test.sh.
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <iterator>
#include <string>

#include "core/batch.h"
#include "core/input_fd.h"
#include "core/pcap_format.h"
#include "core/report.h"
#include "core/timeline_source.h"

using namespace vei;

namespace {

size_t entries(const char* dir) {
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
}

// A gzip member's beginning: a pcap file header and one 60-byte record, flushed so that they
// decompress, with the member left open as a writer still at work would leave it.
std::string gzip_start() {
  std::string plain(pcap::file_header_size + record_header_size + 60, '\0');
  auto* p = reinterpret_cast<std::byte*>(plain.data());
  pcap::write_file_header(p, pcap::Precision::us, 65535, 1);
  pcap::write_record_header(p + pcap::file_header_size, 1'700'000'000 * pcap::ns_per_s, pcap::Precision::us, 60, 60);
  z_stream z{};
  REQUIRE(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(1024, '\0');
  z.next_in = reinterpret_cast<Bytef*>(plain.data());
  z.avail_in = static_cast<uInt>(plain.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_SYNC_FLUSH) == Z_OK);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

TEST_CASE("decompress: a pump waiting on a silent pipe is stopped with the run and joined with its source") {
  Interrupt interrupt;
  const size_t threads = entries("/proc/self/task");
  const size_t fds = entries("/proc/self/fd");
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const std::string bytes = gzip_start();
  REQUIRE(::write(pipe_fds[1], bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));

  Report report;
  report.set_quiet(true);
  SourceOptions options;
  options.name = "silent";
  options.report = &report;
  options.interrupt = &interrupt;
  auto source = open_capture("/proc/self/fd/" + std::to_string(pipe_fds[0]), options);
  CHECK(source->info().first_ts_ns == 1'700'000'000 * pcap::ns_per_s);
  // A sanitizer may start a thread of its own with the first one created: count from here.
  const size_t with_pump = entries("/proc/self/task");
  CHECK(with_pump >= threads + 1);

  Batch batch;
  batch.reserve_arena(1 << 16);
  source->fill(batch);
  CHECK(batch.records.size() == 1);
  CHECK(!batch.last);
  // The run stops while the reader waits for what the pump cannot yet give: not damage.
  interrupt.raise();
  source->fill(batch);
  CHECK(batch.last);
  CHECK(batch.records.empty());
  source.reset();
  CHECK(entries("/proc/self/task") == with_pump - 1);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  CHECK(entries("/proc/self/fd") == fds);
  CHECK(report.messages().empty());
}
