// Runs a fuzz target over files, without libFuzzer: the seed corpus and every input a fuzzing run
// found (fuzz/regressions/) replayed by ctest in the normal and sanitizer builds. An input that
// takes longer than the bound counts as a hang, as it would in a fuzzing run.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  constexpr auto kBound = std::chrono::seconds(2);  // fuzz/run's -timeout
  std::vector<std::filesystem::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path path(argv[i]);
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::directory_iterator(path))
        if (entry.is_regular_file() && entry.path().filename() != "README.md")
          inputs.push_back(entry.path());
    } else {
      inputs.push_back(path);
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "replay: no inputs given\n");
    return 2;
  }
  int slow = 0;
  for (const auto& path : inputs) {
    std::ifstream file(path, std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(file)),
                           std::istreambuf_iterator<char>());
    const auto start = std::chrono::steady_clock::now();
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
    const auto took = std::chrono::steady_clock::now() - start;
    if (took > kBound) {
      std::fprintf(stderr, "replay: %s took %lld ms (bound %lld ms)\n", path.c_str(),
                   static_cast<long long>(
                       std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
                   static_cast<long long>(
                       std::chrono::duration_cast<std::chrono::milliseconds>(kBound).count()));
      ++slow;
    }
  }
  std::printf("replay: %zu input(s), %d over the time bound\n", inputs.size(), slow);
  return slow == 0 ? 0 : 1;
}
