#pragma once

#include "event/guarded_loop.hpp"
#include "pg/connector.hpp"

namespace pgwd {

/// Connect attempts on the watch loop itself (WatchdogOptions::connector_threads = 0, the
/// library's default): each PQconnectPoll step, SCRAM's CPU included, runs in a callback of the
/// watch loop, noted as `connect_poll` for the slow-callback report and given a connect step's
/// share of the pass budget (GuardedLoop::SocketWork). Holds no thread and no
/// state of its own; AttemptGate bounds how much of it one loop pass can do. An attempt libpq
/// refuses at once (a refused port on loopback) is returned by start() at once, as before the
/// Connector existed: no extra loop pass per refused attempt during an outage.
class LoopConnector final : public Connector {
 public:
  /// `loop` is the watch loop; it must outlive every attempt.
  explicit LoopConnector(GuardedLoop& loop) : loop_(loop) {}
  LoopConnector(const LoopConnector&) = delete;
  LoopConnector& operator=(const LoopConnector&) = delete;

  Started start(const Conninfo& conninfo, const ConnectionRef& who, Done done) override;

 private:
  GuardedLoop& loop_;
};

}  // namespace pgwd
