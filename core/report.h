// Warnings raised while a pipeline runs, from any thread. A warning about input data marks the
// run as damaged (exit status 3): it finished, but not everything in the inputs was usable. A
// warning about a packet the output could not take marks it as failed (exit status 1): the run
// went on, but the output lacks what it was given.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

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

}  // namespace vei
