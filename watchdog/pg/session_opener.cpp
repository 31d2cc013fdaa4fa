#include "pg/session_opener.hpp"

namespace pgwd {

/// One opening: a HostWalk that walks once; the session it produces hands its connection over.
/// Not copyable or movable (the walk is registered with the loop).
class SessionOpener::Opening final : public WalkCallbacks {
 public:
  Opening(SessionOpener& owner, std::uint64_t id, std::shared_ptr<const LinkSettings> settings,
          const std::string& target)
      : owner_(owner),
        id_(id),
        settings_(std::move(settings)),
        who_{target, 0},
        walk_(*settings_, owner.loop_, owner.resolver_, owner.connector_, owner.loop_, who_,
              *this) {}
  Opening(const Opening&) = delete;
  Opening& operator=(const Opening&) = delete;

  void start() { walk_.start(); }

  void on_resolved() override {}
  void on_connected(std::unique_ptr<PgSession> session, const Connected&) override {
    // Kept, closed, until the opening goes: this may be the session's own callback.
    session_ = std::move(session);
    OpenOutcome outcome;
    outcome.conn = session_->release();
    if (!outcome.conn)
      outcome.failure = {Cause::connect_failed, "", "the connection could not be handed over"};
    owner_.finished(id_, std::move(outcome));  // the last action: it destroys this opening
  }
  void on_connect_failed(const ConnectFailed& failed) override {
    owner_.finished(id_, {nullptr, failed.failure});
  }

 private:
  SessionOpener& owner_;
  const std::uint64_t id_;
  const std::shared_ptr<const LinkSettings> settings_;  // the walk refers to it
  const ConnectionRef who_;                             // the walk refers to it
  HostWalk walk_;
  std::unique_ptr<PgSession> session_;
};

SessionOpener::SessionOpener(GuardedLoop& loop, Resolver& resolver, Connector& connector)
    : loop_(loop), resolver_(resolver), connector_(connector) {}

SessionOpener::~SessionOpener() = default;

std::uint64_t SessionOpener::open(std::shared_ptr<const LinkSettings> settings,
                                  const std::string& target, OpenDone done) {
  const std::uint64_t id = next_id_++;
  auto opening = std::make_unique<Opening>(*this, id, std::move(settings), target);
  Opening& started = *opening;
  openings_.emplace(id, Entry{std::move(opening), std::move(done)});
  started.start();  // reports from the loop, never from inside connect()
  return id;
}

void SessionOpener::cancel(std::uint64_t id) {
  const auto found = openings_.find(id);
  if (found == openings_.end()) return;
  // Not from inside the opening's own callbacks (finished() takes it out first): at once.
  openings_.erase(found);
}

void SessionOpener::finished(std::uint64_t id, OpenOutcome outcome) {
  const auto found = openings_.find(id);
  if (found == openings_.end()) return;
  Entry entry = std::move(found->second);
  openings_.erase(found);
  // We are inside the opening's link's callback: it goes once that has returned.
  loop_.delete_when_safe(std::move(entry.opening));
  entry.done(std::move(outcome));
}

OpenFunction SessionOpener::from_any_thread(Loop& loop, std::weak_ptr<SessionOpener> opener,
                                            std::shared_ptr<const LinkSettings> settings,
                                            std::string target) {
  return [&loop, opener = std::move(opener), settings = std::move(settings),
          target = std::move(target)](OpenDone done) -> std::function<void()> {
    struct Ticket {
      std::atomic<bool> cancelled{false};
      std::uint64_t id = 0;  // the loop thread's only
    };
    auto ticket = std::make_shared<Ticket>();
    loop.post([opener, settings, target, ticket, done = std::move(done)]() mutable {
      if (ticket->cancelled) return;
      if (const auto live = opener.lock())
        ticket->id = live->open(settings, target, std::move(done));
    });
    // Posted after the open: the loop runs them in that order.
    return [&loop, opener, ticket] {
      ticket->cancelled = true;
      loop.post([opener, ticket] {
        if (const auto live = opener.lock(); live && ticket->id != 0) live->cancel(ticket->id);
      });
    };
  };
}

}  // namespace pgwd
