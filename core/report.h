// What a pipeline reports while it runs, from any thread: warnings, and the injections it took.
//
// Warnings raised while a pipeline runs, from any thread. A warning about input data marks the
// run as damaged (exit status 3): it finished, but not everything in the inputs was usable. A
// warning about a packet the output could not take marks it as failed (exit status 1): the run
// went on, but the output lacks what it was given.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "stats.h"  // beside it, in the source tree and where cmake/install.cmake installs it

namespace vei {

class Report {
 public:
  void warn(std::string message);     // printed at once on stderr
  void damaged(std::string message);  // a warning that also sets damaged()
  bool is_damaged() const { return damaged_.load(); }
  void lost(std::string message);  // a warning that also sets has_lost()
  bool has_lost() const { return lost_.load(); }
  std::vector<std::string> messages() const;
  void set_quiet(bool quiet) { quiet_ = quiet; }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
  std::atomic<bool> damaged_{false};
  std::atomic<bool> lost_{false};
  bool quiet_ = false;
};

// The injections a run accepted, for --stats-json: the injecting thread lists one when it hands
// its packets over (event ids first_id, first_id + 1, ...), the output thread gives it its time
// when the first of them is written. Bounded: past max_listed injections, the rest are counted.
class InjectionLog {
 public:
  static constexpr size_t max_listed = 65'536;
  void accepted(uint64_t first_id, uint64_t packets, uint16_t source, std::string stage);
  // An event record written: the one whose id starts a listed injection dates it.
  void written(uint64_t id, int64_t ts_ns) {
    if (pending_.load(std::memory_order_acquire) != 0) [[unlikely]] date(id, ts_ns);
  }
  // names[source] names each source.
  std::vector<Injection> injections(const std::vector<std::string>& names) const;
  uint64_t unlisted() const;

 private:
  struct Entry {
    uint16_t source;
    std::string stage;
    uint64_t packets;
    std::optional<int64_t> ts_ns;
  };
  void date(uint64_t id, int64_t ts_ns);

  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
  std::unordered_map<uint64_t, size_t> first_ids_;  // not yet written: first id -> entries_ index
  std::atomic<size_t> pending_{0};                  // first_ids_.size(), read without the lock
  uint64_t unlisted_ = 0;
};

}  // namespace vei
