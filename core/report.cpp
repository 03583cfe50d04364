#include "core/report.h"

#include <fmt/format.h>

#include <cstdio>

namespace vei {

void Report::warn(std::string message) {
  std::lock_guard lock(mutex_);
  if (!quiet_) fmt::print(stderr, "veipipe: warning: {}\n", message);
  messages_.push_back(std::move(message));
}

void Report::damaged(std::string message) {
  damaged_ = true;
  warn(std::move(message));
}

void Report::lost(std::string message) {
  lost_ = true;
  warn(std::move(message));
}

std::vector<std::string> Report::messages() const {
  std::lock_guard lock(mutex_);
  return messages_;
}

}  // namespace vei
