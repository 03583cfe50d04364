// Lanes (pipeline/lanes.h) tested directly: items run in any order, on one thread or several, are
// each read once and finished once, in number order, after their read.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "pipeline/lanes.h"

using namespace vei;

namespace {

struct Log {
  std::vector<std::atomic<int>> reads;
  std::vector<uint64_t> finished;  // in the order finish() was called (one at a time by contract)
  std::vector<std::thread::id> reader;
  uint64_t on_reader = 0;  // finishes on the thread that read the item
  explicit Log(size_t n) : reads(n), reader(n) {}
};

void check(const Log& log, size_t n) {
  REQUIRE(log.finished.size() == n);
  for (size_t i = 0; i < n; ++i) {
    CHECK(log.finished[i] == i);
    CHECK(log.reads[i].load() == 1);
  }
}

}  // namespace

TEST_CASE("lanes: one thread running each window's items last first finishes them all in order") {
  // A TBB thread pops its own queued tasks last in first out: the newest item runs before the ones
  // it must follow, and nothing else will run them.
  constexpr size_t n = 200;
  for (size_t window : {1, 2, 3, 7, 15}) {
    Lanes<uint64_t> lanes;
    Log log(n);
    const auto run = [&](uint64_t i) {
      lanes.run(
          i, [&] { ++log.reads[i]; },
          [&](const uint64_t& k) {
            CHECK(log.reads[k].load() == 1);
            log.finished.push_back(k);
          });
    };
    for (size_t from = 0; from < n; from += window) {
      const size_t to = std::min(n, from + window);
      for (size_t i = from; i < to; ++i) REQUIRE(lanes.post(i) == i);
      for (size_t i = to; i-- > from;) run(i);
    }
    check(log, n);
  }
}

TEST_CASE("lanes: items run by several threads in shuffled order are finished in order, each once") {
  constexpr size_t n = 20000;
  for (unsigned threads : {2u, 4u}) {
    Lanes<uint64_t> lanes;
    Log log(n);
    std::mutex queue_mutex;
    std::deque<uint64_t> queue;
    std::atomic<uint64_t> done{0};
    std::atomic<bool> in_finish{false};
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        std::mt19937 rng(t);
        while (done.load() < n) {
          uint64_t i;
          {
            std::lock_guard lock(queue_mutex);
            if (queue.empty()) continue;
            // Most take the oldest, some the newest: items run out of order.
            const bool newest = rng() % 3 == 0;
            i = newest ? queue.back() : queue.front();
            newest ? queue.pop_back() : queue.pop_front();
          }
          lanes.run(
              i,
              [&] {
                ++log.reads[i];
                log.reader[i] = std::this_thread::get_id();
              },
              [&](const uint64_t& k) {
                CHECK_FALSE(in_finish.exchange(true));  // one at a time
                if (log.reader[k] == std::this_thread::get_id()) ++log.on_reader;
                log.finished.push_back(k);
                in_finish = false;
                ++done;
              });
        }
      });
    // The producer keeps fewer than `ring` items unfinished, as a source's pool does.
    for (uint64_t i = 0; i < n; ++i) {
      while (i - done.load() >= Lanes<uint64_t>::ring - 1) std::this_thread::yield();
      REQUIRE(lanes.post(i) == i);
      std::lock_guard lock(queue_mutex);
      queue.push_back(i);
    }
    for (auto& w : workers) w.join();
    check(log, n);
    MESSAGE(threads, " threads: ", log.on_reader, " of ", n, " finished on the thread that read them");
  }
}
