#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/daemon_fixture.hpp"
#include "support/subprocess.hpp"

namespace pgwd::testing {

struct Curl {
  int exit_code = 0;
  std::string status;  // "200", or "000" when no HTTP answer came
};

/// Debian's curl with `args`, printing only the status code (the body goes to /dev/null).
inline Curl curl(std::vector<std::string> args) {
  std::vector<std::string> argv = {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                   "--max-time", "10"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto result = run_process(argv);
  return {result.exit_code, result.output};
}

/// The daemon watching the cluster as target `main`, with a --web.config.file (TLS, basic auth).
struct WebFixture : DaemonFixture {
  std::filesystem::path web_path = config_path.parent_path() / "web.yml";
  void write_web(const std::string& yaml) { std::ofstream(web_path) << yaml; }
  std::string url(const std::string& scheme, const std::string& path) const {
    return scheme + "://127.0.0.1:" + std::to_string(metrics_port) + path;
  }
  void start_web(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--target", "main=" + cluster.conninfo("main"), "--listen",
                                     listen(), "--web.config.file", web_path.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    start(args);
  }
};

}  // namespace pgwd::testing
