// The installed package as a host uses it (docs/embedding.md "Install and find_package"):
// `cmake --install` into a scratch prefix, the examples built out-of-tree against it with
// find_package(pgwatchdog) and, for one example, with `pkg-config --cflags --libs pgwatchdog`;
// then both binaries run against a throwaway cluster: they connect and stop cleanly on SIGINT.
#include <doctest/doctest.h>
#include <stdlib.h>  // mkdtemp

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "support/daemon_process.hpp"
#include "support/subprocess.hpp"
#include "support/test_cluster.hpp"

#ifndef PGWD_TEST_BUILD_DIR
#error "the build passes PGWD_TEST_BUILD_DIR, PGWD_TEST_EXAMPLES_DIR, PGWD_TEST_CMAKE, ..."
#endif

namespace fs = std::filesystem;
using pgwd::testing::DaemonProcess;
using pgwd::testing::run_checked;
using pgwd::testing::TestCluster;

namespace {

constexpr std::string_view kExample = "embed_on_host_loop";
constexpr auto kConnectDeadline = std::chrono::seconds(30);
constexpr auto kStopDeadline = std::chrono::seconds(10);
// Warnings a host would see from our headers are errors here.
constexpr std::string_view kHostWarnings = "-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror";

/// A fresh directory under $PGWD_TEST_ROOT (else the temp dir), removed with what is in it.
class ScratchDirectory {
 public:
  ScratchDirectory() {
    fs::path parent = fs::temp_directory_path();
    if (const char* root = std::getenv("PGWD_TEST_ROOT"); root != nullptr && *root != '\0')
      parent = root;
    std::string pattern = (parent / "pgwd-package-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    path_ = pattern;
  }
  ~ScratchDirectory() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;

  const fs::path& path() const noexcept { return path_; }

 private:
  fs::path path_;
};

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

std::string cache_value(const fs::path& build_dir, std::string_view key) {
  std::ifstream cache(build_dir / "CMakeCache.txt");
  const std::string prefix = std::string(key) + ":";
  for (std::string line; std::getline(cache, line);) {
    if (line.starts_with(prefix)) return line.substr(line.find('=') + 1);
  }
  return {};
}

/// `pkg-config ARGS...` that sees the scratch prefix's pgwatchdog.pc.
std::string pkg_config(const fs::path& prefix, std::vector<std::string> args) {
  std::vector<std::string> argv = {
      "env", "PKG_CONFIG_PATH=" + (prefix / PGWD_TEST_INSTALL_LIBDIR / "pkgconfig").string(),
      PGWD_TEST_PKG_CONFIG};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_checked(argv);
}

/// Runs an example against the cluster: it must report a healthy connection, have its backends
/// in pg_stat_activity, and exit 0 on SIGINT, printing its metrics on the way out.
void check_runs_and_stops(const fs::path& binary, const TestCluster& cluster,
                          const fs::path& library_dir) {
  INFO("example: ", binary.string());
  const std::string application = "pgwd_package_" + binary.filename().string();
  // stdbuf: the example prints with stdio, fully buffered into a file; line buffering lets the
  // test see "healthy" as it happens. LD_LIBRARY_PATH: a binary linked against a shared
  // libpgwatchdog by pkg-config has no RUNPATH into the scratch prefix.
  DaemonProcess example("stdbuf", {"-oL", binary.string(), cluster.conninfo(application)},
                        {{"LD_LIBRARY_PATH", library_dir.string()}});
  const bool healthy = example.wait_for_output("healthy", kConnectDeadline);
  INFO("output:\n", example.output());
  REQUIRE(healthy);
  // "healthy" is printed once a connection is up: its backend is there, under our name.
  CHECK(!cluster.backend_pids(application).empty());
  example.send_signal(SIGINT);
  const std::optional<int> exit_code = example.wait_exit(kStopDeadline);
  REQUIRE(exit_code.has_value());
  CHECK(*exit_code == 0);
  CHECK(example.output().find("\npgwatchdog_up{target=\"main\"} 1\n") != std::string::npos);
}

}  // namespace

TEST_CASE("the installed package builds the examples out-of-tree, and they run") {
  const ScratchDirectory scratch;
  const fs::path prefix = scratch.path() / "prefix";
  const fs::path library_dir = prefix / PGWD_TEST_INSTALL_LIBDIR;

  run_checked({PGWD_TEST_CMAKE, "--install", PGWD_TEST_BUILD_DIR, "--prefix", prefix.string()});
  // What the package consists of (docs/embedding.md "Install and find_package").
  for (const char* file :
       {"include/pgwd/watchdog.hpp", "include/pgwd/export.hpp", "include/pgwd/series_store.hpp",
        "include/pgwd/prometheus_collectable.hpp"}) {
    INFO(file);
    CHECK(fs::is_regular_file(prefix / file));
  }
  const fs::path cmake_dir = library_dir / "cmake" / "pgwatchdog";
  CHECK(fs::is_regular_file(cmake_dir / "pgwatchdog-config.cmake"));
  CHECK(fs::is_regular_file(cmake_dir / "pgwatchdog-config-version.cmake"));
  CHECK(fs::is_regular_file(cmake_dir / "pgwatchdog-targets.cmake"));
  CHECK(pkg_config(prefix, {"--modversion", "pgwatchdog"}) ==
        std::string(PGWD_PROJECT_VERSION) + "\n");
#if PGWD_TEST_SHARED
  CHECK_FALSE(fs::exists(library_dir / "libpgwatchdog.a"));
  // The ABI is the public API: every exported symbol is a pgwd:: name. (The compiler hides what
  // is not marked PGWD_EXPORT; the linker's version script hides the rest.)
  const std::string exported =
      run_checked({"nm", "-DC", "--defined-only", (library_dir / "libpgwatchdog.so").string()});
  std::istringstream lines(exported);
  int public_symbols = 0;
  for (std::string line; std::getline(lines, line);) {
    INFO("exported: ", line);
    const bool public_name =
        line.find(" pgwd::") != std::string::npos || line.find(" for pgwd::") != std::string::npos;
    CHECK(public_name);
    ++public_symbols;
  }
  CHECK(exported.find("pgwd::Watchdog::add_target(") != std::string::npos);
  CHECK(public_symbols > 0);
  // A versioned SONAME, so that an incompatible 0.x never replaces the one a host was built with.
  CHECK(fs::is_symlink(library_dir / "libpgwatchdog.so"));
  CHECK(
      fs::read_symlink(library_dir / "libpgwatchdog.so").string().starts_with("libpgwatchdog.so."));
#else
  CHECK(fs::is_regular_file(library_dir / "libpgwatchdog.a"));
  CHECK_FALSE(fs::exists(library_dir / "libpgwatchdog.so"));
#endif

  // The version file: before 1.0 another minor version is another API, and is refused.
  const fs::path other_minor = scratch.path() / "other-minor";
  fs::create_directories(other_minor);
  std::ofstream(other_minor / "CMakeLists.txt")
      << "cmake_minimum_required(VERSION 3.25)\nproject(other_minor NONE)\n"
      << "find_package(pgwatchdog " PGWD_NEXT_MINOR_VERSION " CONFIG REQUIRED)\n";
  const pgwd::testing::ProcessResult refused = pgwd::testing::run_process(
      {PGWD_TEST_CMAKE, "-S", other_minor.string(), "-B", (other_minor / "build").string(),
       "-DCMAKE_PREFIX_PATH=" + prefix.string()});
  INFO("find_package(pgwatchdog " PGWD_NEXT_MINOR_VERSION "):\n", refused.output);
  CHECK(refused.exit_code != 0);
  CHECK(refused.output.find("version: " PGWD_PROJECT_VERSION) != std::string::npos);

  // As a host's project: find_package(pgwatchdog 0.3 CONFIG REQUIRED) in examples/CMakeLists.txt.
  const fs::path examples_build = scratch.path() / "examples-build";
  run_checked({PGWD_TEST_CMAKE, "-S", PGWD_TEST_EXAMPLES_DIR, "-B", examples_build.string(),
               "-DCMAKE_PREFIX_PATH=" + prefix.string(),
               "-DCMAKE_CXX_COMPILER=" PGWD_TEST_CXX_COMPILER,
               "-DCMAKE_CXX_FLAGS=" + std::string(kHostWarnings)});
  // It found this package, not one installed elsewhere on the machine.
  CHECK(fs::equivalent(cache_value(examples_build, "pgwatchdog_DIR"), cmake_dir));
  run_checked({PGWD_TEST_CMAKE, "--build", examples_build.string(), "--parallel", "2"});

  // With pkg-config and nothing else. The headers need C++20, which pkg-config cannot say.
  const fs::path pkg_config_binary = scratch.path() / (std::string(kExample) + "_pkg_config");
  std::vector<std::string> compile = {PGWD_TEST_CXX_COMPILER, "-std=c++20"};
  for (auto& flag : split_words(std::string(kHostWarnings))) compile.push_back(flag);
  compile.push_back(std::string(PGWD_TEST_EXAMPLES_DIR) + "/" + std::string(kExample) + ".cpp");
  compile.insert(compile.end(), {"-o", pkg_config_binary.string()});
  for (auto& flag : split_words(pkg_config(prefix, {"--cflags", "--libs", "pgwatchdog"})))
    compile.push_back(flag);
  run_checked(compile);

  // One after the other, not as SUBCASEs: doctest would install and build again for each.
  const TestCluster cluster;
  check_runs_and_stops(examples_build / kExample, cluster, library_dir);
  check_runs_and_stops(pkg_config_binary, cluster, library_dir);
}
