// Micro-benchmarks of the engine's hot paths (Google Benchmark):
//   BM_MergerPush   TimestampMerger::push over synthetic batches: 2 or 8 inputs, records interleaved
//                   at random (short runs) or one input holding 99% of them (long runs), IMIX or
//                   64-byte frames. One iteration merges one round of ~32 MiB to a sink that only
//                   hands the batches back to their pools.
//   BM_ReadCapture  open_capture(file)->fill(batch) until the last batch, over a ~64 MiB classic pcap
//                   written at start-up into a temporary directory (removed at exit); IMIX or 64-byte
//                   frames, timestamps kept or shifted (headers to rewrite).
//
//   build-bench/benchmarks/veipipe_bench [--benchmark_filter=Merger] [--benchmark_min_time=0.2s]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/batch.h"
#include "core/pcap_format.h"
#include "core/report.h"
#include "core/timeline_source.h"
#include "core/merger.h"

namespace {

constexpr int64_t kStartNs = int64_t{1'700'000'000} * 1'000'000'000;
constexpr int64_t kGapNs = 1000;  // between consecutive records of the merged timeline (distinct µs)

// Frame lengths: `frame` > 0 is a fixed length, 0 is IMIX (60:590:1514 as 7:4:1, as veigen's).
class FrameSizes {
 public:
  explicit FrameSizes(uint32_t frame) : frame_(frame) {}
  uint32_t next() {
    if (frame_) return frame_;
    static constexpr uint32_t kImix[12] = {60, 60, 590, 60, 1514, 60, 590, 60, 60, 590, 60, 590};
    return kImix[i_++ % 12];
  }
  static std::string name(uint32_t frame) { return frame ? std::to_string(frame) + "B" : "imix"; }

 private:
  uint32_t frame_;
  uint64_t i_ = 0;
};

struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1p-53; }
};

// The batch API is being reshaped (own arena only, or arena or file window): these compile with
// either shape.
template <class B>
std::byte* arena_of(B& b) {
  if constexpr (requires { b.arena(); })
    return b.arena();
  else
    return b.data();
}
template <class B>
void point_at_arena(B& b) {
  if constexpr (requires { b.use_arena(); }) b.use_arena();
}

void put_record_header(std::byte* p, int64_t ts_ns, uint32_t caplen) {
  const uint32_t words[4] = {static_cast<uint32_t>(ts_ns / 1'000'000'000),
                             static_cast<uint32_t>(ts_ns % 1'000'000'000 / 1000), caplen, caplen};
  std::memcpy(p, words, sizeof words);
}

// ------------------------------------------------------------------------------------------------
// Merger

// What one input batch holds; restored into a pooled batch before every round.
struct BatchLayout {
  std::vector<vei::Record> records;
  size_t used = 0;
  bool last = false;
};

struct MergeInput {
  std::vector<BatchLayout> layouts;
  std::unique_ptr<vei::BatchPool> pool;
  std::unordered_map<vei::Batch*, size_t> layout_of;  // pooled batch -> the layout its arena holds
};

class MergeWorkload {
 public:
  // `dominant_permille` = 0: every record goes to an input drawn uniformly; otherwise input 0 takes
  // that share and the others split the rest.
  MergeWorkload(size_t inputs, uint32_t dominant_permille, uint32_t frame, size_t total_bytes)
      : inputs_(inputs) {
    SplitMix64 rng{42};
    FrameSizes sizes(frame);
    std::vector<size_t> input_used(inputs, vei::default_arena_size);  // forces a first batch
    size_t previous_input = SIZE_MAX;
    int64_t ts = kStartNs;
    for (size_t bytes = 0; bytes < total_bytes; ts += kGapNs) {
      size_t in;
      if (dominant_permille == 0) {
        in = static_cast<size_t>(rng.next() % inputs);
      } else {
        in = rng.unit() * 1000 < dominant_permille ? 0 : 1 + static_cast<size_t>(rng.next() % (inputs - 1));
      }
      const uint32_t caplen = sizes.next();
      const size_t size = vei::record_header_size + caplen;
      auto& layouts = inputs_[in].layouts;
      if (input_used[in] + size > vei::default_arena_size) {
        layouts.emplace_back();
        input_used[in] = 0;
        push_order_.emplace_back(in, layouts.size() - 1);  // pushed in order of first record
      }
      auto& layout = layouts.back();
      layout.records.push_back({ts, layout.records.size(), static_cast<uint32_t>(input_used[in]), caplen, caplen,
                                static_cast<uint16_t>(in), 0});
      input_used[in] += size;
      layout.used = input_used[in];
      bytes += size;
      bytes_ += size;
      ++records_;
      if (in != previous_input) ++runs_;
      previous_input = in;
    }
    for (size_t i = 0; i < inputs; ++i) {
      auto& input = inputs_[i];
      if (input.layouts.empty()) throw std::logic_error("an input got no records; raise the total size");
      input.layouts.back().last = true;
      // Every batch's arena is written once; the merger only reads arenas, so a round restores just
      // the descriptors.
      input.pool = std::make_unique<vei::BatchPool>(input.layouts.size(), vei::default_arena_size);
      for (size_t j = 0; j < input.layouts.size(); ++j) {
        vei::Batch* b = input.pool->acquire();
        input.layout_of[b] = j;
        std::byte* arena = arena_of(*b);
        for (const auto& r : input.layouts[j].records) {
          put_record_header(arena + r.offset, r.ts_ns, r.caplen);
          std::memset(arena + r.offset + vei::record_header_size, static_cast<int>(r.seq & 0xff), r.caplen);
        }
      }
      for (auto& [b, j] : input.layout_of) input.pool->release(b);
    }
  }

  // Takes every input batch back from its pool, restored to its layout, in push order.
  std::vector<vei::Batch*> prepare_round() {
    std::vector<std::vector<vei::Batch*>> by_layout(inputs_.size());
    for (size_t i = 0; i < inputs_.size(); ++i) {
      auto& input = inputs_[i];
      by_layout[i].resize(input.layouts.size());
      for (size_t k = 0; k < input.layouts.size(); ++k) {
        vei::Batch* b = input.pool->try_acquire();
        if (!b) throw std::logic_error("an input batch was not handed back by the merger");
        const BatchLayout& layout = input.layouts[input.layout_of.at(b)];
        point_at_arena(*b);
        b->used = layout.used;
        b->records = layout.records;
        b->source = static_cast<uint16_t>(i);
        b->last = layout.last;
        b->raw_is_output = true;
        by_layout[i][input.layout_of.at(b)] = b;
      }
    }
    std::vector<vei::Batch*> order;
    order.reserve(push_order_.size());
    for (auto [in, j] : push_order_) order.push_back(by_layout[in][j]);
    return order;
  }

  size_t inputs() const { return inputs_.size(); }
  uint64_t records() const { return records_; }
  uint64_t bytes() const { return bytes_; }  // record headers included
  double mean_run() const { return static_cast<double>(records_) / static_cast<double>(runs_); }

 private:
  std::vector<MergeInput> inputs_;
  std::vector<std::pair<size_t, size_t>> push_order_;  // (input, layout)
  uint64_t records_ = 0, bytes_ = 0, runs_ = 0;
};

void BM_MergerPush(benchmark::State& state) {
  const auto inputs = static_cast<size_t>(state.range(0));
  const auto dominant = static_cast<uint32_t>(state.range(1));
  const auto frame = static_cast<uint32_t>(state.range(2));
  MergeWorkload work(inputs, dominant, frame, size_t{32} << 20);
  vei::BatchPool output_pool(4, vei::default_arena_size);
  uint64_t emitted = 0;
  const auto emit = [&emitted](std::unique_ptr<vei::Sheet> sheet) {
    for (const vei::Piece& p : sheet->pieces) emitted += p.count;
    sheet->release();
  };

  for (auto _ : state) {
    state.PauseTiming();
    std::vector<vei::Batch*> round = work.prepare_round();
    vei::TimestampMerger merger(inputs, vei::TimestampMerger::End::all, vei::pcap::Precision::us, output_pool, emit);
    emitted = 0;
    state.ResumeTiming();
    for (vei::Batch* b : round) merger.push(b);
    const bool done = merger.timeline_done();
    merger.finish();
    benchmark::DoNotOptimize(emitted);
    if (!done || emitted != work.records()) {
      state.SkipWithError("the merger did not emit every record");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(work.records()));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(work.bytes()));
  state.counters["mean_run"] = work.mean_run();
  state.SetLabel(std::to_string(inputs) + " inputs, " + FrameSizes::name(frame) + ", " +
                 (dominant ? "input 0 holds " + std::to_string(dominant / 10) + "%" : "interleaved"));
}

BENCHMARK(BM_MergerPush)
    ->ArgNames({"inputs", "dominant_permille", "frame"})
    ->Args({2, 0, 0})
    ->Args({8, 0, 0})
    ->Args({2, 990, 0})
    ->Args({8, 990, 0})
    ->Args({2, 0, 64})
    ->Args({8, 0, 64})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.5);

// ------------------------------------------------------------------------------------------------
// Capture reader

struct Capture {
  std::string path;
  uint64_t records = 0;
  uint64_t bytes = 0;  // file size
};

// Classic pcap files written once into a temporary directory that is removed at exit.
class CaptureFiles {
 public:
  ~CaptureFiles() {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // Writes every file on first use, so that no benchmark runs while another's file is written back.
  const Capture& get(uint32_t frame) {
    if (dir_.empty()) {
      std::string pattern = (std::filesystem::temp_directory_path() / "veipipe-microbench.XXXXXX").string();
      if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
      dir_ = pattern;
      for (const uint32_t f : {0u, 64u}) {
        Capture c;
        c.path = dir_ + "/" + FrameSizes::name(f) + ".pcap";
        write(c, f, size_t{64} << 20);
        files_.emplace(f, c);
      }
      ::sync();
    }
    return files_.at(frame);
  }

 private:
  static void write(Capture& c, uint32_t frame, size_t target) {
    std::FILE* f = std::fopen(c.path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot create " + c.path);
    std::vector<std::byte> buffer;
    buffer.reserve((size_t{4} << 20) + 2048);
    buffer.resize(vei::pcap::file_header_size);
    vei::pcap::write_file_header(buffer.data(), vei::pcap::Precision::us, vei::pcap::max_snaplen, 1);
    FrameSizes sizes(frame);
    uint64_t written = 0;
    for (int64_t ts = kStartNs; written + buffer.size() < target; ts += kGapNs) {
      const uint32_t caplen = sizes.next();
      const size_t at = buffer.size();
      buffer.resize(at + vei::record_header_size + caplen);
      put_record_header(buffer.data() + at, ts, caplen);
      std::memset(buffer.data() + at + vei::record_header_size, static_cast<int>(c.records & 0xff), caplen);
      ++c.records;
      if (buffer.size() >= (size_t{4} << 20)) {
        written += std::fwrite(buffer.data(), 1, buffer.size(), f);
        buffer.clear();
      }
    }
    written += std::fwrite(buffer.data(), 1, buffer.size(), f);
    if (std::fclose(f) != 0) throw std::runtime_error("cannot write " + c.path);
    c.bytes = written;
  }

  std::string dir_;
  std::map<uint32_t, Capture> files_;
};

CaptureFiles& capture_files() {
  static CaptureFiles files;
  return files;
}

void BM_ReadCapture(benchmark::State& state) {
  const auto frame = static_cast<uint32_t>(state.range(0));
  const bool shifted = state.range(1) != 0;
  const Capture& capture = capture_files().get(frame);
  vei::BatchPool pool(1, vei::default_arena_size);
  vei::Batch* batch = pool.acquire();
  vei::Report report;
  report.set_quiet(true);

  for (auto _ : state) {
    vei::SourceOptions options;
    options.name = capture.path;
    options.report = &report;
    auto source = vei::open_capture(capture.path, std::move(options));
    source->set_mapping(shifted ? int64_t{1'000'000'000} : 0, vei::pcap::Precision::us);
    source->compile_filter();
    uint64_t records = 0;
    do {
      source->fill(*batch);
      records += batch->records.size();
      benchmark::DoNotOptimize(batch->records.data());
    } while (!batch->last);
    if (records != capture.records) {
      state.SkipWithError("the reader did not deliver every record");
      break;
    }
  }
  batch->clear();
  pool.release(batch);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(capture.records));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(capture.bytes));
  state.SetLabel(FrameSizes::name(frame) + (shifted ? ", shifted (headers rewritten)" : ", times kept"));
}

BENCHMARK(BM_ReadCapture)
    ->ArgNames({"frame", "shifted"})
    ->Args({0, 0})
    ->Args({64, 0})
    ->Args({0, 1})
    ->Args({64, 1})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.5);

}  // namespace
