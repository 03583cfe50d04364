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

void InjectionLog::accepted(uint64_t first_id, uint64_t packets, uint16_t source, std::string stage) {
  std::lock_guard lock(mutex_);
  if (entries_.size() == max_listed) {
    ++unlisted_;
    return;
  }
  first_ids_.emplace(first_id, entries_.size());
  entries_.push_back({source, std::move(stage), packets, std::nullopt});
  pending_.store(first_ids_.size(), std::memory_order_release);
}

void InjectionLog::date(uint64_t id, int64_t ts_ns) {
  std::lock_guard lock(mutex_);
  const auto it = first_ids_.find(id);
  if (it == first_ids_.end()) return;
  entries_[it->second].ts_ns = ts_ns;
  first_ids_.erase(it);
  pending_.store(first_ids_.size(), std::memory_order_release);
}

std::vector<Injection> InjectionLog::injections(const std::vector<std::string>& names) const {
  std::lock_guard lock(mutex_);
  std::vector<Injection> out;
  for (const auto& e : entries_)
    out.push_back({names.at(e.source), e.stage, e.packets, e.ts_ns});
  return out;
}

uint64_t InjectionLog::unlisted() const {
  std::lock_guard lock(mutex_);
  return unlisted_;
}

}  // namespace vei
