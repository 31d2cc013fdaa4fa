#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace pgwd::testing {

/// A directory of its own under the system's temporary directory, for files a test writes (a
/// config file, a password_file); removed with everything in it when the test ends.
class ScratchDirectory {
 public:
  ScratchDirectory()
      : path_(std::filesystem::temp_directory_path() /
              ("pgwd_scratch_" + std::to_string(getpid()) + "_" + std::to_string(next_id()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDirectory() { std::filesystem::remove_all(path_); }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;

  /// Writes (or replaces) the file `name` with exactly `content`; its path.
  std::string write(const std::string& name, const std::string& content) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
    return file.string();
  }
  std::string path(const std::string& name) const { return (path_ / name).string(); }

 private:
  static int next_id() {
    static int id = 0;
    return ++id;
  }

  std::filesystem::path path_;
};

}  // namespace pgwd::testing
