#include "support/bench_args.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace pgwd::bench {
namespace {

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "bench: %s\n", message.c_str());
  std::exit(2);
}

}  // namespace

BenchArgs::BenchArgs(int argc, char** argv, const std::vector<std::string>& known) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) usage_error("unexpected argument '" + arg + "'");
    const std::string name = arg.substr(2);
    if (std::find(known.begin(), known.end(), name) == known.end())
      usage_error("unknown option '" + arg + "'");
    if (i + 1 >= argc) usage_error("option '" + arg + "' needs a value");
    values_[name] = argv[++i];
  }
}

int BenchArgs::integer(const std::string& name, int fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  try {
    std::size_t used = 0;
    const int value = std::stoi(it->second, &used);
    if (used == it->second.size()) return value;
  } catch (const std::exception&) {
  }
  usage_error("--" + name + " wants a whole number, not '" + it->second + "'");
}

double BenchArgs::number(const std::string& name, double fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  try {
    std::size_t used = 0;
    const double value = std::stod(it->second, &used);
    if (used == it->second.size()) return value;
  } catch (const std::exception&) {
  }
  usage_error("--" + name + " wants a number, not '" + it->second + "'");
}

std::string BenchArgs::text(const std::string& name, const std::string& fallback) const {
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::vector<int> BenchArgs::integers(const std::string& name,
                                     const std::vector<int>& fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  std::vector<int> out;
  std::stringstream list(it->second);
  std::string item;
  while (std::getline(list, item, ',')) {
    try {
      std::size_t used = 0;
      out.push_back(std::stoi(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      usage_error("--" + name + " wants whole numbers separated by commas, not '" + it->second + "'");
    }
  }
  return out;
}

}  // namespace pgwd::bench
