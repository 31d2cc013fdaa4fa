// A borrowed PgSession (pg/pg_session.hpp), the way lending watches a connection its host lent:
// the PGconn stays the owner's. Closing or destroying the session never finishes it, and every
// notice the server sends reaches the owner's notice receiver as well as the session's reading.
// A real PGconn, connected to a scripted server on loopback (a few bytes of the protocol), on the
// fake loop, which reports the socket only when the test says so.
#include "pg/pg_session.hpp"

#include <doctest/doctest.h>
#include <libpq-fe.h>
#include <poll.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/fake_loop.hpp"
#include "support/scripted_server.hpp"
#include "support/silent_listener.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using pgwd::ConnectionRef;
using pgwd::Inspection;
using pgwd::PgSession;
using pgwd::ProbeDone;
using pgwd::Readiness;
using pgwd::SessionSettings;
using pgwd::testing::Accepted;
using pgwd::testing::FakeLoop;
using pgwd::testing::notice;
using pgwd::testing::server_welcome;
using pgwd::testing::SilentListener;

namespace {

struct NoNotes final : pgwd::ActivityNotes {
  void doing(pgwd::CallbackPhase, const ConnectionRef*, const char*) noexcept override {}
};

/// The session's receiver: inspects at each wake-up, as LentConnection does.
struct Receiver final : pgwd::SessionCallbacks {
  PgSession* session = nullptr;
  std::vector<Inspection> inspections;
  void on_readable() override { inspections.push_back(session->inspect()); }
  void on_probe_done(const ProbeDone&) override {}
};

/// The host's own notice receiver, which a loan must keep hearing.
struct OwnerNotices {
  std::vector<std::string> messages;
  static void receive(void* self, const PGresult* result) {
    const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    static_cast<OwnerNotices*>(self)->messages.emplace_back(primary ? primary : "");
  }
};

/// A PGconn the host connected (to the scripted server) and lends: non-blocking, as the lender
/// leaves it, with the owner's notice receiver. The test finishes it itself.
struct Fixture {
  SilentListener listener;
  std::optional<Accepted> server;
  PGconn* conn = nullptr;
  OwnerNotices owner;
  FakeLoop loop;
  NoNotes notes;
  const ConnectionRef who{"lent", 1};
  SessionSettings settings;
  Receiver receiver;

  Fixture() {
    const std::string conninfo = "hostaddr=127.0.0.1 port=" + std::to_string(listener.port) +
                                 " dbname=x user=y sslmode=disable gssencmode=disable";
    conn = PQconnectStart(conninfo.c_str());
    REQUIRE(conn != nullptr);
    server.emplace(listener.fd);
    server->send_all(server_welcome());
    PostgresPollingStatusType polling = PGRES_POLLING_WRITING;
    while (polling != PGRES_POLLING_OK && polling != PGRES_POLLING_FAILED) {
      pollfd waiting{PQsocket(conn),
                     static_cast<short>(polling == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
      REQUIRE(::poll(&waiting, 1, 10000) == 1);
      polling = PQconnectPoll(conn);
    }
    REQUIRE(PQstatus(conn) == CONNECTION_OK);
    REQUIRE(PQsetnonblocking(conn, 1) == 0);
    PQsetNoticeReceiver(conn, &OwnerNotices::receive, &owner);
    server->receive_now();  // the startup packet
  }
  ~Fixture() {
    if (conn) PQfinish(conn);
  }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  std::unique_ptr<PgSession> borrow() {
    auto session =
        std::make_unique<PgSession>(PgSession::Borrowed{conn, &OwnerNotices::receive, &owner},
                                    settings, "127.0.0.1:5432", loop, notes, who, receiver);
    receiver.session = session.get();
    return session;
  }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture,
                  "borrowed session: close() and destruction leave the connection open - "
                  "nothing reaches the server until its owner finishes it") {
  std::unique_ptr<PgSession> session = borrow();
  session->watch_idle();
  session->close();
  session.reset();
  bool closed = true;
  CHECK(server->receive_now(&closed).empty());  // no Terminate message
  CHECK_FALSE(closed);
  CHECK(PQstatus(conn) == CONNECTION_OK);
  // The owner's PQfinish, by contrast, is seen at once: Terminate ('X'), then the socket closes.
  PQfinish(conn);
  conn = nullptr;
  const std::string sent = server->receive_now(&closed);
  CHECK(sent.starts_with("X"));
  CHECK(closed);
}

TEST_CASE_FIXTURE(Fixture,
                  "borrowed session: a notice on the idle connection reaches the owner's "
                  "receiver and explains the wake-up") {
  std::unique_ptr<PgSession> session = borrow();
  session->watch_idle();
  server->send_all(notice("disk is 91% full"));
  CHECK(loop.make_ready(PQsocket(conn), Readiness{.readable = true, .writable = false}) == 1);
  REQUIRE(receiver.inspections.size() == 1);
  const Inspection& inspection = receiver.inspections[0];
  CHECK(inspection.verdict == Inspection::Verdict::explained);
  REQUIRE(inspection.arrived.notices.size() == 1);
  CHECK(inspection.arrived.notices[0].message == "disk is 91% full");
  CHECK(inspection.arrived.notices[0].sqlstate == "01000");
  CHECK(owner.messages == std::vector<std::string>{"disk is 91% full"});
  session.reset();
  CHECK(PQstatus(conn) == CONNECTION_OK);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
