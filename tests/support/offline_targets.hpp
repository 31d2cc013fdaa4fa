#pragma once

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "pgwd/target_options.hpp"

namespace pgwd::testing {

/// A target on a port nobody listens on: for watchdogs on a FakeLoop that is never advanced,
/// whose targets therefore never even try to connect, so that a test has their series alone.
inline TargetOptions offline_target(const std::string& name) {
  TargetOptions o;
  o.name = name;
  o.conninfo = "host=127.0.0.1 port=1 dbname=x user=y";
  return o;
}

/// A target whose host name waits for a lookup the FakeLoop's resolver never answers: a watchdog
/// whose loop runs starts it, and it opens no socket.
inline TargetOptions unresolved_target(const std::string& name) {
  TargetOptions o = offline_target(name);
  o.conninfo = "host=nowhere.invalid dbname=x user=y";
  return o;
}

/// A logger that drops everything (adding thousands of targets logs a line each).
inline std::shared_ptr<spdlog::logger> silent_logger() {
  return std::make_shared<spdlog::logger>("silent",
                                          std::make_shared<spdlog::sinks::null_sink_mt>());
}

}  // namespace pgwd::testing
