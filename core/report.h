// Warnings raised while a pipeline runs, from any thread. A warning about input data marks the
// run as damaged (exit status 3): it finished, but not everything in the inputs was usable.
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
  std::vector<std::string> messages() const;
  void set_quiet(bool quiet) { quiet_ = quiet; }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> messages_;
  std::atomic<bool> damaged_{false};
  bool quiet_ = false;
};

}  // namespace vei
