#include "stages/file_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

namespace vei {

FileWriter::FileWriter(std::string path, pcap::Precision precision, uint32_t snaplen, uint32_t linktype)
    : path_(std::move(path)) {
  if (path_ == "-") {
    fd_ = STDOUT_FILENO;
    owns_fd_ = false;
    path_ = "<stdout>";
  } else {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(errno);
  }
  std::byte header[pcap::file_header_size];
  pcap::write_file_header(header, precision, snaplen, linktype);
  write_all(header, sizeof header, nullptr);
}

FileWriter::~FileWriter() {
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

void FileWriter::fail(int error) {
  throw std::runtime_error(fmt::format("{}: {}", path_, std::strerror(error)));
}

void FileWriter::write_all(const std::byte* data, size_t size, const Batch* batch) {
  size_t done = 0;
  while (done < size) {
    const ssize_t r = ::write(fd_, data + done, size - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int error = r < 0 ? errno : ENOSPC;
      // Cut the file back to the last whole record so that it stays a valid capture.
      size_t whole = 0;
      if (batch)
        for (const auto& rec : batch->records) {
          const size_t end = rec.offset + record_header_size + rec.caplen;
          if (end > done) break;
          whole = end;
        }
      if (owns_fd_ && done) (void)::ftruncate(fd_, static_cast<off_t>(offset_ + whole));
      offset_ += whole;
      fail(error);
    }
    done += static_cast<size_t>(r);
  }
  offset_ += size;
}

void FileWriter::consume(const Batch& batch) {
  if (batch.used == 0) return;
  write_all(batch.data(), batch.used, &batch);
  stats_.packets += batch.records.size();
  stats_.bytes += batch.used;
}

void FileWriter::close() {
  if (owns_fd_ && fd_ >= 0) {
    const int r = ::close(fd_);
    fd_ = -1;
    if (r != 0) fail(errno);
  }
}

}  // namespace vei
