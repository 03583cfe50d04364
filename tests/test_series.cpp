// The per-second series of --stats-json (core/stats.h's SeriesCounter): buckets from the first
// record, one column per source, and wider buckets once a run outgrows the bound; the injection
// log (core/report.h); and both filled by an unpaced engine (tests/plot_test.sh runs a paced one).
#include <doctest/doctest.h>

#include <numeric>
#include <random>

#include "core/batch.h"
#include "core/report.h"
#include "core/stats.h"
#include "inject_util.h"
#include "pipeline/engine.h"

using namespace vei;

namespace {

constexpr int64_t s = 1'000'000'000;
const std::vector<std::string> names{"bg", "icmp", "api"};

uint64_t sum(const std::vector<uint64_t>& v) { return std::accumulate(v.begin(), v.end(), uint64_t{0}); }

}  // namespace

TEST_CASE("series: one bucket per second from the first record, one column per source") {
  SeriesCounter counter(3);
  const int64_t t0 = 1'700'000'000 * s + 123;  // the first record, not a whole second
  counter.add(0, t0, 100);
  counter.add(0, t0 + s - 1, 50);  // still the first second
  counter.add(1, t0 + s, 64);      // the second's first nanosecond
  counter.add(2, t0 + 3 * s + 5, 1500);
  counter.add(0, t0 + 3 * s + 6, 10);
  const Series series = counter.series(names);
  CHECK(series.start_ns == t0);
  CHECK(series.bucket_ns == s);
  REQUIRE(series.sources.size() == 3);
  CHECK(series.sources[0].name == "bg");
  CHECK(series.sources[2].rank == 2);
  CHECK(series.sources[0].packets == std::vector<uint64_t>{2, 0, 0, 1});
  CHECK(series.sources[0].bytes == std::vector<uint64_t>{150, 0, 0, 10});
  CHECK(series.sources[1].packets == std::vector<uint64_t>{0, 1, 0, 0});
  CHECK(series.sources[1].bytes == std::vector<uint64_t>{0, 64, 0, 0});
  CHECK(series.sources[2].packets == std::vector<uint64_t>{0, 0, 0, 1});
}

TEST_CASE("series: a record before the first (disorder=keep) counts in bucket 0, and nothing is empty before a record") {
  SeriesCounter counter(1);
  CHECK(counter.series({"bg"}).sources[0].packets.empty());
  counter.add(0, 10 * s, 1);
  counter.add(0, 12 * s, 1);
  counter.add(0, 3 * s, 7);  // earlier than the first: bucket 0
  counter.add(0, 12 * s + 1, 1);
  const Series series = counter.series({"bg"});
  CHECK(series.sources[0].packets == std::vector<uint64_t>{2, 0, 2});
  CHECK(series.sources[0].bytes == std::vector<uint64_t>{8, 0, 2});
}

TEST_CASE("series: past the bound, buckets double as often as needed and keep every packet") {
  SeriesCounter counter(2, 4);  // 4 buckets at most
  for (int64_t second = 0; second < 4; ++second) counter.add(0, second * s, 10);
  CHECK(counter.series({"bg", "x"}).bucket_ns == s);
  counter.add(1, 4 * s, 3);  // a 5th second: 2 s buckets
  Series series = counter.series({"bg", "x"});
  CHECK(series.bucket_ns == 2 * s);
  CHECK(series.sources[0].packets == std::vector<uint64_t>{2, 2, 0});
  CHECK(series.sources[0].bytes == std::vector<uint64_t>{20, 20, 0});
  CHECK(series.sources[1].packets == std::vector<uint64_t>{0, 0, 1});
  counter.add(0, 17 * s, 5);  // 4 s buckets hold 16 s: 8 s buckets
  counter.add(0, 4 * s + 1, 1);
  series = counter.series({"bg", "x"});
  CHECK(series.bucket_ns == 8 * s);
  CHECK(series.sources[0].packets == std::vector<uint64_t>{5, 0, 1});
  CHECK(series.sources[1].packets == std::vector<uint64_t>{1, 0, 0});
  CHECK(sum(series.sources[0].bytes) + sum(series.sources[1].bytes) == 40 + 3 + 5 + 1);
}

TEST_CASE("series: a sorted run counted by its buckets' ends equals counting each record") {
  // Runs of two sources in turn, back to back in their arenas, spanning many buckets and, with at
  // most 8 of them, widening; a run of the second source starts before the first's last bucket.
  std::mt19937_64 rng(7);
  SeriesCounter each(2, 8), runs(2, 8);
  int64_t ts[2] = {5 * s / 2, s};
  for (int round = 0; round < 60; ++round) {
    const auto source = static_cast<uint16_t>(round % 2);
    std::vector<Record> records(1 + rng() % 40);
    uint32_t at = 100;
    for (Record& r : records) {
      ts[source] += static_cast<int64_t>(rng() % (s / 3));
      r.ts_ns = ts[source];
      r.caplen = static_cast<uint32_t>(rng() % 1500);
      r.offset = at;
      at += static_cast<uint32_t>(record_header_size) + r.caplen;
      each.add(source, r.ts_ns, r.caplen);
    }
    runs.add_sorted(source, records.data(), records.data() + records.size());
  }
  const Series a = each.series({"bg", "x"}), b = runs.series({"bg", "x"});
  CHECK(a.bucket_ns > s);  // it widened
  CHECK(a.bucket_ns == b.bucket_ns);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(a.sources[i].packets == b.sources[i].packets);
    CHECK(a.sources[i].bytes == b.sources[i].bytes);
  }
}

TEST_CASE("series: ten hours at the default bound stay in seconds, eleven become 2 s buckets") {
  SeriesCounter counter(1);
  counter.add(0, 0, 1);
  counter.add(0, 36'000 * s - 1, 1);
  Series series = counter.series({"bg"});
  CHECK(series.bucket_ns == s);
  CHECK(series.sources[0].packets.size() == 36'000);
  counter.add(0, 39'600 * s, 1);
  series = counter.series({"bg"});
  CHECK(series.bucket_ns == 2 * s);
  CHECK(series.sources[0].packets.size() == 19'801);
  CHECK(series.sources[0].packets.front() == 1);
  CHECK(series.sources[0].packets[17'999] == 1);
  CHECK(series.sources[0].packets.back() == 1);
}

TEST_CASE("injections: dated by their first written record, listed up to the bound, the rest counted") {
  InjectionLog log;
  log.written(7, 5);  // nothing listed: ignored
  log.accepted(10, 3, 1, "icmp");
  log.accepted(13, 1, 2, "frames");
  log.written(11, 100);  // not a first id
  log.written(13, 200);
  log.written(10, 300);
  log.written(10, 400);  // already dated
  auto listed = log.injections(names);
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].source == "icmp");
  CHECK(listed[0].stage == "icmp");
  CHECK(listed[0].packets == 3);
  CHECK(listed[0].ts_ns == 300);
  CHECK(listed[1].source == "api");
  CHECK(listed[1].ts_ns == 200);
  log.accepted(14, 1, 2, "frames");
  CHECK_FALSE(log.injections(names)[2].ts_ns.has_value());
  for (uint64_t id = 100; id < 100 + InjectionLog::max_listed - 3; ++id) log.accepted(id, 1, 2, "frames");
  CHECK(log.unlisted() == 0);
  log.accepted(1'000'000, 1, 2, "frames");
  CHECK(log.unlisted() == 1);
  CHECK(log.injections(names).size() == InjectionLog::max_listed);
}

TEST_CASE("series: an engine counts what it writes by second and rank, and dates each injection") {
  using namespace vei::test::inject;
  test::TempDir tmp;
  test::write_raw(tmp / "bg.pcap", capture({rec(0, 0), rec(1, 1'000'000), rec(2, 2'000'000), rec(3, 3'000'000, 100)}));
  auto engine = Engine::from_description("<test>", describe(tmp / "bg.pcap", tmp / "out.pcap"), true);
  const auto a = injected_frame(injected_mark | 1), b = injected_frame(injected_mark | 2);
  const InjectedFrame pair[] = {{a, 0}, {b, 1'500'000'000}};  // now (the first packet) and 1.5 s later
  CHECK(engine.inject(pair) == 2);
  CHECK(engine.inject(a, t0_ns + 2'700'000'000) == 1);
  engine.start();
  REQUIRE(engine.wait() == exit_ok);
  const Stats stats = engine.stats();
  const Series& series = stats.series;
  CHECK(series.start_ns == t0_ns);
  REQUIRE(series.sources.size() == 2);  // the background and the API
  CHECK(series.sources[0].packets == std::vector<uint64_t>{1, 1, 1, 1});
  CHECK(series.sources[0].bytes == std::vector<uint64_t>{60, 60, 60, 100});
  CHECK(series.sources[1].name == "api");
  CHECK(series.sources[1].packets == std::vector<uint64_t>{1, 1, 1, 0});
  CHECK(series.sources[1].bytes == std::vector<uint64_t>{a.size(), b.size(), a.size(), 0});
  REQUIRE(stats.injections.size() == 2);
  CHECK(stats.injections[0].source == "api");
  CHECK(stats.injections[0].stage == "frames");
  CHECK(stats.injections[0].packets == 2);
  CHECK(stats.injections[0].ts_ns == t0_ns);
  CHECK(stats.injections[1].packets == 1);
  CHECK(stats.injections[1].ts_ns == t0_ns + 2'700'000'000);
}
