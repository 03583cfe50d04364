// What the injection tests share (tests/test_inject.cpp, tests/test_vei.cpp): a background with
// tagged frames, injected frames recognisable by their tag, and the checks of a woven output.
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "testutil.h"

namespace vei::test::inject {

using test::RawFile;
using test::RawRecord;


constexpr uint32_t t0 = 1'700'000'000;
constexpr int64_t t0_ns = int64_t{t0} * 1'000'000'000;
constexpr uint32_t injected_mark = 0x80000000;  // set in every injected frame's tag

inline RawRecord rec(uint32_t tag, uint32_t usec, size_t size = 60) {
  RawRecord r;
  r.sec = t0 + usec / 1'000'000;
  r.frac = usec % 1'000'000;
  r.bytes = test::tagged_frame(tag, size);
  r.caplen = r.len = static_cast<uint32_t>(size);
  return r;
}

inline RawFile capture(std::vector<RawRecord> records, uint32_t linktype = 1) {
  RawFile f;
  f.snaplen = 262144;
  f.linktype = linktype;
  f.records = std::move(records);
  return f;
}

inline uint32_t tag_of(const std::vector<unsigned char>& b) {
  return b.size() < 4 ? 0 : uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

// The frame injected under `tag`: its size varies with the tag, its bytes encode it.
inline std::vector<std::byte> injected_frame(uint32_t tag) {
  const auto bytes = test::tagged_frame(tag, 64 + tag % 61);
  std::vector<std::byte> out(bytes.size());
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

inline bool is_injected_frame(const RawRecord& r) {
  const uint32_t tag = tag_of(r.bytes);
  if (!(tag & injected_mark)) return false;
  const auto want = injected_frame(tag);
  return r.caplen == want.size() && r.len == want.size() && std::memcmp(r.bytes.data(), want.data(), want.size()) == 0;
}

inline bool same_record(const RawRecord& a, const RawRecord& b) {
  return a.sec == b.sec && a.frac == b.frac && a.caplen == b.caplen && a.len == b.len && a.bytes == b.bytes;
}

// Checks `out` is `bg` with injected frames woven in: every background record, unchanged and in
// order; timestamps never decreasing; every other record an injected frame. Returns the injected
// frames' tags in output order (and sets `problem` to the first thing wrong, if anything is).
inline std::vector<uint32_t> woven_tags(const RawFile& bg, const RawFile& out, std::string& problem) {
  std::vector<uint32_t> tags;
  size_t j = 0;
  int64_t previous = INT64_MIN;
  for (size_t i = 0; i < out.records.size(); ++i) {
    const auto& r = out.records[i];
    const int64_t ts = r.ts_ns(out.nanos);
    if (ts < previous && problem.empty()) problem = fmt::format("record {}: time goes back by {} ns", i, previous - ts);
    previous = ts;
    if (j < bg.records.size() && same_record(r, bg.records[j])) {
      ++j;
    } else if (is_injected_frame(r)) {
      tags.push_back(tag_of(r.bytes));
    } else if (problem.empty()) {
      problem = fmt::format("record {} is neither background record {} nor an injected frame", i, j);
    }
  }
  if (j != bg.records.size() && problem.empty())
    problem = fmt::format("only {} of {} background records were written", j, bg.records.size());
  return tags;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline void veigen(const std::filesystem::path& out, const std::string& size, const std::string& extra = "") {
  const auto command = fmt::format("{}/veigen -o '{}' --size {} {} >/dev/null 2>&1", VEIPIPE_BINARY_DIR,
                                   out.string(), size, extra);
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, command);
}

inline std::string describe(const std::filesystem::path& bg, const std::filesystem::path& out, const std::string& sink = "") {
  return fmt::format("pcap({}) -> file({}{})", bg.string(), out.string(), sink);
}

// Fails fast instead of hanging the suite: aborts the process, saying what hung, when its scope
// lasts longer than `seconds` (a deadlock cannot be recovered from in-process).
class Watchdog {
 public:
  Watchdog(std::string what, int seconds)
      : thread_([this, what = std::move(what), seconds] {
          std::unique_lock lock(mutex_);
          if (!ended_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) {
            std::fprintf(stderr, "WATCHDOG: %s did not end within %d s (a deadlock?); aborting\n", what.c_str(),
                         seconds);
            std::abort();
          }
        }) {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    ended_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ended_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members it uses exist
};


}  // namespace vei::test::inject
