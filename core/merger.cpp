#include "core/merger.h"

#include "core/ordering.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace vei {

namespace {

bool in_turn(size_t turn, size_t input) { return turn == SIZE_MAX || input == turn; }

// A sheet with room for a batch's runs of an interleaved merge. Grown from empty, its pieces were
// copied at each doubling into memory fresh from the kernel, faulted in page by page: 5% of an
// 8-way merge's samples. Memory of one size, freed by the output thread, comes back from malloc.
std::unique_ptr<Sheet> fresh_sheet() {
  auto sheet = std::make_unique<Sheet>();
  sheet->pieces.reserve(4096);
  return sheet;
}

}  // namespace

TimestampMerger::TimestampMerger(size_t inputs, End end, pcap::Precision precision, BatchPool& output_pool,
                                 std::function<void(std::unique_ptr<Sheet>)> emit)
    : inputs_(inputs),
      end_(end),
      precision_(precision),
      output_pool_(output_pool),
      emit_(std::move(emit)),
      sheet_(fresh_sheet()) {}

void TimestampMerger::push(Batch* batch) {
  if (finished_) {
    stats_.dropped_after_end += batch->records.size();
    batch->pool->release(batch);
    return;
  }
  if (batch->event) {
    deferred_.push_back(batch);
  } else {
    Input& in = inputs_[batch->source];
    in.reached = std::max(in.reached, batch->reached_ts);
    in.queue.push_back(batch);
    if (!in.next) settle(in);
  }
  stamp_events();
  merge();
  // Whatever this push merged goes out now: a source whose batches all wait in an unsent sheet
  // could read no more, and the merge would wait for it.
  flush();
}

bool TimestampMerger::now_known() const {
  return emitted_any_ || inputs_[0].next || inputs_[0].ended;
}

int64_t TimestampMerger::now() const {
  if (emitted_any_) return last_ts_;
  return inputs_[0].next ? inputs_[0].next->ts_ns : origin_;
}

void TimestampMerger::stamp_events() {
  // Before the background shows its first packet, "now" is unknown: events wait for it.
  if (deferred_.empty() || !now_known()) return;
  const int64_t current = now();
  for (Batch* b : deferred_) {
    stats_.late_events += vei::stamp_events(*b, current, current, precision_);
    stats_.events += b->records.size();
    b->last = true;
    Input& in = inputs_.emplace_back();
    in.event = true;
    in.queue.push_back(b);
    settle(in);
  }
  deferred_.clear();
}

void TimestampMerger::settle(Input& in) {
  for (;;) {
    if (in.queue.empty()) {
      in.next = in.end = nullptr;
      return;
    }
    Batch* front = in.queue.front();
    if (!in.next) {
      in.next = front->records.data();
      in.end = in.next + front->records.size();
    }
    if (in.next != in.end) return;
    in.queue.pop_front();
    in.next = nullptr;
    in.ended = front->last;
    sheet_->done.push_back(front);  // its pieces, if any, are in this sheet
  }
}

size_t TimestampMerger::turn() const {
  if (end_ != End::concat) return SIZE_MAX;
  size_t current = 0;
  while (current < inputs_.size() && !inputs_[current].event && inputs_[current].ended) ++current;
  return current;
}

void TimestampMerger::merge() {
  std::erase_if(inputs_, [](const Input& in) { return in.event && in.ended; });
  for (;;) {
    // With end=first, what the others hold past the background's last packet is not written.
    const int64_t horizon =
        end_ == End::first && inputs_[0].ended ? std::max(last_background_ts_, inputs_[0].reached) : INT64_MAX;
    const size_t only = turn();
    bool timeline_left = false;
    bool waiting = false;
    const auto choice = choose(inputs_.size(), [&](size_t i) -> const Record* {
      const Input& in = inputs_[i];
      if (in.event) return in.next;  // events never make the merge wait
      if (timeline_done_ || in.ended || !in_turn(only, i)) return nullptr;
      // A timeline input whose next record is not known yet may hold the earliest: wait for it.
      if (!in.next) {
        waiting = true;
        return nullptr;
      }
      if (in.next->ts_ns > horizon) return nullptr;
      timeline_left = true;
      return in.next;
    });
    if (waiting) return emit_due_events();
    timeline_done_ = !timeline_left;
    if (!choice) return;
    Input& best = inputs_[choice->stream];
    const RunLimit limit = run_limit(*choice, best.event ? INT64_MAX : horizon);
    const Record* run_end = vei::run_end(best.next + 1, best.end, limit, best.queue.front()->sorted);
    if (&best == &inputs_[0]) last_background_ts_ = run_end[-1].ts_ns;
    emitted_any_ = true;
    last_ts_ = run_end[-1].ts_ns;
    take_run(best, run_end);
  }
}

void TimestampMerger::emit_due_events() {
  // Events stamped "now" need not wait for a timeline input that is slow to deliver (a pipe, say):
  // nothing it brings can be earlier than what was already written. A timeline head already known
  // at that same time still goes first (core/ordering.h); only what the slow input may bring at
  // exactly now can follow an event of that time.
  const int64_t current = now();
  int64_t limit = INT64_MAX;
  const size_t only = turn();
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (const Input& in = inputs_[i]; !in.event && !in.ended && in.next && in_turn(only, i))
      limit = std::min(limit, in.next->ts_ns);
  const auto due = [&](const Record* r) { return r->ts_ns <= current && r->ts_ns < limit; };
  for (size_t i = 0; i < inputs_.size(); ++i) {
    while (inputs_[i].event && inputs_[i].next && due(inputs_[i].next)) {
      Input& in = inputs_[i];
      const Record* run_end = in.next;
      while (run_end != in.end && due(run_end)) ++run_end;
      emitted_any_ = true;
      last_ts_ = std::max(last_ts_, run_end[-1].ts_ns);
      take_run(in, run_end);
    }
  }
}

void TimestampMerger::take_run(Input& in, const Record* run_end) {
  const Batch& batch = *in.queue.front();
  const Record* r = in.next;
  const auto count = static_cast<size_t>(run_end - r);
  stats_.packets += count;
  if (batch.raw_is_output) {
    // Back to back, headers ready: the run goes out where it lies.
    stats_.bytes += captured_bytes(r, run_end);
    stats_.packets_in_place += count;
    sheet_->add(batch, static_cast<size_t>(r - batch.records.data()), count);
  } else {
    copy_run(batch, r, run_end);
  }
  in.next = run_end;
  if (run_end == in.end) settle(in);
}

void TimestampMerger::copy_run(const Batch& batch, const Record* r, const Record* run_end) {
  // pcapng comments and flags (Batch::annotations) go with their records.
  const auto notes = batch.annotations_of(static_cast<size_t>(r - batch.records.data()), static_cast<size_t>(run_end - r));
  size_t note = 0;
  stats_.packets_copied += static_cast<uint64_t>(run_end - r);
  for (; r != run_end; ++r) {
    Batch& out = output_with_room(record_header_size + r->caplen);
    std::byte* to = out.data() + out.used;
    pcap::write_record_header(to, r->ts_ns, precision_, r->caplen, r->len);
    std::memcpy(to + record_header_size, batch.data() + r->offset + record_header_size, r->caplen);
    Record copy = *r;
    copy.offset = static_cast<uint32_t>(out.used);
    const auto index = static_cast<size_t>(r - batch.records.data());
    for (; note < notes.size() && notes[note].index <= index; ++note)
      out.annotate(out.records.size(), {batch.annotation_bytes.data() + notes[note].at, notes[note].size});
    out.records.push_back(copy);
    out.used += record_header_size + r->caplen;
    stats_.bytes += r->caplen;
    sheet_->add(out, out.records.size() - 1, 1);
  }
}

Batch& TimestampMerger::output_with_room(size_t bytes) {
  // A full output batch goes out with its sheet before the next is taken: the pool's batches held by
  // a sheet not sent yet could never come back.
  if (out_ && out_->used + bytes > out_->capacity()) flush();
  if (!out_) {
    out_ = output_pool_.acquire();
    out_->reserve_arena(bytes);
    sheet_->done.push_back(out_);
  }
  return *out_;
}

void TimestampMerger::flush(bool last) {
  if (!last && sheet_->pieces.empty() && sheet_->done.empty()) return;
  out_ = nullptr;
  sheet_->last = last;
  emit_(std::exchange(sheet_, fresh_sheet()));
}

void TimestampMerger::finish() {
  if (finished_) return;
  // Events already accepted are written whatever the timeline did.
  timeline_done_ = true;
  stamp_events();
  merge();
  finished_ = true;
  for (auto& in : inputs_) {
    for (Batch* b : in.queue) {
      const Record* from = b == in.queue.front() && in.next ? in.next : b->records.data();
      stats_.dropped_after_end += static_cast<uint64_t>(b->records.data() + b->records.size() - from);
      sheet_->done.push_back(b);  // the front one may have pieces in this sheet
    }
    in.queue.clear();
    in.next = in.end = nullptr;
  }
  // Events still waiting for a "now" (the background never showed a packet) are not written.
  for (Batch* b : deferred_) {
    stats_.dropped_after_end += b->records.size();
    b->pool->release(b);
  }
  deferred_.clear();
  flush(true);
}

}  // namespace vei
