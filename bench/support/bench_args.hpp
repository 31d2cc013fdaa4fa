#pragma once

/// \file
/// `--name value` command-line options of a benchmark (scripts/bench passes the sizes).
/// An unknown or malformed option ends the program with exit 2 and a message naming it.

#include <map>
#include <string>
#include <vector>

namespace pgwd::bench {

class BenchArgs {
 public:
  /// `known` lists the option names (without "--") this benchmark accepts.
  BenchArgs(int argc, char** argv, const std::vector<std::string>& known);

  int integer(const std::string& name, int fallback) const;
  double number(const std::string& name, double fallback) const;
  std::string text(const std::string& name, const std::string& fallback) const;
  /// A comma-separated list of whole numbers, e.g. --sizes 1000,10000.
  std::vector<int> integers(const std::string& name, const std::vector<int>& fallback) const;

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace pgwd::bench
