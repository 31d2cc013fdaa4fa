#include "pg/pg_link.hpp"

#include <utility>

namespace pgwd {

PgLink::PgLink(const LinkSettings& settings, Loop& loop, Resolver& resolver, Connector& connector,
               ActivityNotes& notes, const ConnectionRef& who, LinkCallbacks& callbacks)
    : callbacks_(callbacks),
      walk_(settings, loop, resolver, connector, notes, who, *this),
      not_connected_(loop.make_timer([this] {
        callbacks_.on_probe_done({Failure{Cause::closed, "", "not connected"}, {}});
      })) {}

PgLink::~PgLink() {
  close();
}

void PgLink::connect() {
  close();
  if (session_) previous_session_ = std::move(session_);
  walk_.start();  // reports from the loop
}

void PgLink::close() {
  walk_.cancel();
  not_connected_->disarm();
  if (session_) session_->close();  // kept: we may be inside its callback
}

void PgLink::on_resolved() {
  callbacks_.on_resolved();
}

void PgLink::on_connected(std::unique_ptr<PgSession> session, const Connected& connected) {
  session_ = std::move(session);
  session_->set_callbacks(callbacks_);
  callbacks_.on_connected(connected);
}

void PgLink::on_connect_failed(const ConnectFailed& failed) {
  callbacks_.on_connect_failed(failed);
}

void PgLink::not_connected() {
  not_connected_->arm(Nanos::zero());
}

void PgLink::watch_idle() {
  if (session_) session_->watch_idle();
}

Inspection PgLink::inspect() {
  if (!session_) return {Inspection::Verdict::went_away, {Cause::closed, "", "not connected"}, {}};
  return session_->inspect();
}

void PgLink::probe() {
  if (session_)
    session_->probe();
  else
    not_connected();
}

void PgLink::heartbeat() {
  if (session_)
    session_->heartbeat();
  else
    not_connected();
}

Arrivals PgLink::take_arrivals() {
  return session_ ? session_->take_arrivals() : Arrivals{};
}

std::optional<ProbeDone> PgLink::read_answer() {
  return session_ ? session_->read_answer() : std::nullopt;
}

ServerInfo PgLink::server_info() const {
  return session_ ? session_->server_info() : ServerInfo{};
}

}  // namespace pgwd
