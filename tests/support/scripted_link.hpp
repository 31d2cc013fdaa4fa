#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "health/link.hpp"
#include "health/random.hpp"
#include "health/session.hpp"
#include "health/watched_connection.hpp"

namespace pgwd::testing {

/// A Session (or Link) whose I/O the test plays: it records what the state machine asked of it,
/// and the test answers through `cb` (the callbacks) and by setting what inspect() and
/// server_info() return.
template <typename Interface, typename Callbacks>
struct ScriptedIo : Interface {
  explicit ScriptedIo(Callbacks& callbacks) : cb(callbacks) {}
  Callbacks& cb;
  std::vector<std::string> calls;
  Inspection next_inspection;
  ServerInfo server;  ///< what the scripted server reports now
  Arrivals held;      ///< read during a probe, not handed over yet: what take_arrivals() gives
  /// The probe's answer the socket holds and no callback has read yet: what read_answer() gives.
  std::optional<ProbeDone> answer;

  void watch_idle() override { calls.push_back("watch_idle"); }
  Inspection inspect() override {
    calls.push_back("inspect");
    return next_inspection;
  }
  void probe() override { calls.push_back("probe"); }
  void heartbeat() override { calls.push_back("heartbeat"); }
  Arrivals take_arrivals() override {
    calls.push_back("take_arrivals");
    return std::exchange(held, {});
  }
  std::optional<ProbeDone> read_answer() override {
    calls.push_back("read_answer");
    return std::exchange(answer, std::nullopt);
  }
  void close() override { calls.push_back("close"); }
  ServerInfo server_info() const override { return server; }
};

/// A connected session that never connects: what a lent connection watches.
struct ScriptedSession final : ScriptedIo<Session, SessionCallbacks> {
  using ScriptedIo::ScriptedIo;
};

/// A session that connects itself: what a watched connection drives.
struct ScriptedLink final : ScriptedIo<Link, LinkCallbacks> {
  using ScriptedIo::ScriptedIo;
  void connect() override { calls.push_back("connect"); }
};

/// A link factory for WatchedConnection that makes a ScriptedLink and points `made` at it; with
/// `all`, also appends each link it makes (a hedge makes a second one).
inline WatchedConnection::LinkFactory scripted_links(ScriptedLink*& made,
                                                     std::vector<ScriptedLink*>* all = nullptr) {
  return [&made, all](LinkCallbacks& callbacks, const ConnectionRef&) {
    auto link = std::make_unique<ScriptedLink>(callbacks);
    made = link.get();
    if (all) all->push_back(link.get());
    return link;
  };
}

/// Jitter at its lowest: every backoff delay is ceiling/2.
struct LowestRandom final : Random {
  std::uint64_t next() override { return 0; }
};

}  // namespace pgwd::testing
