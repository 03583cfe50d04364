#include "stages/timestamp_merger.h"

#include <cstring>

namespace vei {

TimestampMerger::TimestampMerger(size_t inputs, End end, pcap::Precision precision, BatchPool& output_pool,
                                 std::function<void(Batch*)> emit)
    : inputs_(inputs), end_(end), precision_(precision), output_pool_(output_pool), emit_(std::move(emit)) {}

void TimestampMerger::push(Batch* batch) {
  if (finished_) {
    stats_.dropped_after_end += batch->records.size();
    batch->pool->release(batch);
    return;
  }
  inputs_[batch->source].queue.push_back(batch);
  merge();
}

void TimestampMerger::settle(Input& in) {
  while (!in.queue.empty() && in.cursor == in.queue.front()->records.size()) {
    Batch* done = in.queue.front();
    in.queue.pop_front();
    in.cursor = 0;
    in.ended = done->last;
    done->pool->release(done);
  }
}

void TimestampMerger::merge() {
  for (;;) {
    settle(inputs_[0]);
    if (end_ == End::first && inputs_[0].ended) {
      finish();
      return;
    }
    // The smallest head, and the one after it, which bounds how far the smallest may run alone.
    Input* best = nullptr;
    const Record* best_head = nullptr;
    const Record* next_head = nullptr;
    for (auto& in : inputs_) {
      settle(in);
      if (in.ended) continue;
      if (in.queue.empty()) return;  // cannot know what this input holds next
      const Record* head = &in.queue.front()->records[in.cursor];
      // Strictly earlier wins; an equal time keeps the earlier-ranked input, which is scanned first.
      if (!best_head || head->ts_ns < best_head->ts_ns) {
        next_head = best_head;
        best = &in;
        best_head = head;
      } else if (!next_head || head->ts_ns < next_head->ts_ns) {
        next_head = head;
      }
    }
    if (!best) {
      finish();
      return;
    }
    const auto& records = best->queue.front()->records;
    size_t end = records.size();
    if (next_head) {
      const uint16_t best_rank = best_head->source;
      const auto beats_next = [&](const Record& r) {
        return r.ts_ns < next_head->ts_ns || (r.ts_ns == next_head->ts_ns && best_rank < next_head->source);
      };
      end = best->cursor + 1;
      while (end < records.size() && beats_next(records[end])) ++end;
    }
    take_run(*best, end - best->cursor);
  }
}

void TimestampMerger::take_run(Input& in, size_t count) {
  Batch* batch = in.queue.front();
  if (in.cursor == 0 && count == batch->records.size() && batch->raw_is_output) {
    // The whole batch goes out as it is: no copy at all.
    if (out_ && out_->used) {
      emit_(out_);
      out_ = nullptr;
    }
    in.queue.pop_front();
    in.ended = batch->last;
    batch->last = false;
    stats_.packets += count;
    for (const auto& r : batch->records) stats_.bytes += r.caplen;
    ++stats_.forwarded_batches;
    emit_(batch);
    return;
  }
  const Record* r = &batch->records[in.cursor];
  const Record* const end = r + count;
  while (r != end) {
    Batch& out = output_with_room(record_header_size + r->caplen);
    std::byte* to = out.data() + out.used;
    const size_t room = out.capacity() - out.used;
    if (batch->raw_is_output) {
      // As many records as fit, with one memcpy: they lie back to back, headers ready.
      const Record* run_end = r;
      size_t bytes = 0;
      while (run_end != end && bytes + record_header_size + run_end->caplen <= room) {
        bytes += record_header_size + run_end->caplen;
        ++run_end;
      }
      std::memcpy(to, batch->data() + r->offset, bytes);
      const auto delta = static_cast<int64_t>(out.used) - static_cast<int64_t>(r->offset);
      for (; r != run_end; ++r) {
        Record copy = *r;
        copy.offset = static_cast<uint32_t>(static_cast<int64_t>(r->offset) + delta);
        out.records.push_back(copy);
        stats_.bytes += r->caplen;
      }
      out.used += bytes;
      continue;
    }
    pcap::write_record_header(to, r->ts_ns, precision_, r->caplen, r->len);
    std::memcpy(to + record_header_size, batch->data() + r->offset + record_header_size, r->caplen);
    Record copy = *r;
    copy.offset = static_cast<uint32_t>(out.used);
    out.records.push_back(copy);
    out.used += record_header_size + r->caplen;
    stats_.bytes += r->caplen;
    ++r;
  }
  stats_.packets += count;
  in.cursor += count;
  if (in.cursor == batch->records.size()) ++stats_.copied_batches;
}

Batch& TimestampMerger::output_with_room(size_t bytes) {
  if (out_ && out_->used + bytes > out_->capacity()) {
    emit_(out_);
    out_ = nullptr;
  }
  if (!out_) {
    out_ = output_pool_.acquire();
    out_->raw_is_output = true;
    out_->reserve_arena(bytes);
  }
  return *out_;
}

void TimestampMerger::finish() {
  finished_ = true;
  for (auto& in : inputs_) {
    for (Batch* b : in.queue) {
      stats_.dropped_after_end += b->records.size() - (b == in.queue.front() ? in.cursor : 0);
      b->pool->release(b);
    }
    in.queue.clear();
  }
  if (!out_) out_ = output_pool_.acquire();
  out_->last = true;
  emit_(out_);
  out_ = nullptr;
}

}  // namespace vei
