// The embedded side of the soak (docs/soak.md): a host process that runs pgwd::Pool (the pool
// built on lending) on a WatchdogThread under a steady query load, while scripts/soak injects
// faults into the server behind it.
//
// Usage: soak_lender --dsn CONNINFO [--workers N] [--rate Q] [--pool-size N] [--seconds S]
//
// Each worker acquires a lease, runs one statement on it and gives it back, Q times a second in
// all. Output, one JSON object per line on stdout (read by bench/soak/soak.py):
//   {"ev":"fail","t_acquire":T,"t_fail":T,"first":true,"sqlstate":"57P01","status":"bad","error":"..."}
//     a statement that failed; `first` when it was the lease's first statement (the connection
//     came straight out of the pool), `status` the connection's PQstatus afterwards;
//   {"ev":"stats","t":T,"ok":N,"failed":N,"timeouts":N,"checkouts":N,"found_dead":N,"replaced":N,
//    "idle":N,"in_use":N,"rss_kb":N,"fds":N}  every second, cumulative.
// Wall times T are seconds since the epoch. Exits 0 at --seconds or on SIGTERM/SIGINT.
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <mutex>
#include <pgwd/pool.hpp>
#include <pgwd/watchdog_thread.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> stopping{false};
std::mutex out_mutex;

extern "C" void on_signal(int) { stopping.store(true); }

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

void emit(const std::string& line) {
  std::lock_guard<std::mutex> lock(out_mutex);
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

long rss_kb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long value = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> value;
      return value;
    }
    status.ignore(4096, '\n');
  }
  return -1;
}

long open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  long n = 0;
  while (readdir(dir) != nullptr) ++n;
  closedir(dir);
  return n - 3;  // ., .. and the directory's own descriptor
}

struct Counters {
  std::atomic<std::uint64_t> ok{0}, failed{0}, timeouts{0};
};

void worker(pgwd::Pool& pool, Counters& counters, double period) {
  while (!stopping.load()) {
    const auto started = std::chrono::steady_clock::now();
    try {
      pgwd::Lease lease = pool.acquire();
      const double t_acquire = now();
      // Two statements per lease: the first tells whether the pool handed out a live
      // connection, the second that it stays usable.
      for (int i = 0; i < 2 && !stopping.load(); ++i) {
        PGresult* r = PQexec(lease.get(), i == 0 ? "SELECT pg_backend_pid()" : "SELECT 1");
        const bool good = PQresultStatus(r) == PGRES_TUPLES_OK;
        if (good) {
          ++counters.ok;
        } else {
          ++counters.failed;
          const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
          emit("{\"ev\":\"fail\",\"t_acquire\":" + std::to_string(t_acquire) +
               ",\"t_fail\":" + std::to_string(now()) + ",\"first\":" + (i == 0 ? "true" : "false") +
               ",\"sqlstate\":\"" + (state ? state : "") + "\",\"status\":\"" +
               (PQstatus(lease.get()) == CONNECTION_OK ? "ok" : "bad") + "\",\"error\":\"" +
               json_escape(PQerrorMessage(lease.get())) + "\"}");
          PQclear(r);
          lease.discard();
          break;
        }
        PQclear(r);
      }
    } catch (const pgwd::PoolTimeout&) {
      ++counters.timeouts;  // the server is away (a restart, a stop): the pool had nothing live
    } catch (const std::exception& e) {
      if (stopping.load()) break;
      emit(std::string("{\"ev\":\"error\",\"t\":") + std::to_string(now()) + ",\"error\":\"" +
           json_escape(e.what()) + "\"}");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const auto next =
        started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(period));
    while (!stopping.load() && std::chrono::steady_clock::now() < next)
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          next - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dsn;
  int workers = 4;
  double rate = 50;
  std::size_t pool_size = 10;
  double seconds = 1e9;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const char* value = argv[i + 1];
    if (key == "--dsn") dsn = value;
    else if (key == "--workers") workers = std::atoi(value);
    else if (key == "--rate") rate = std::atof(value);
    else if (key == "--pool-size") pool_size = static_cast<std::size_t>(std::atoi(value));
    else if (key == "--seconds") seconds = std::atof(value);
    else {
      std::fprintf(stderr, "soak_lender: unknown argument %s\n", key.c_str());
      return 2;
    }
  }
  if (dsn.empty() || workers < 1 || rate <= 0) {
    std::fprintf(stderr, "usage: soak_lender --dsn CONNINFO [--workers N] [--rate Q] "
                         "[--pool-size N] [--seconds S]\n");
    return 2;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  try {
    pgwd::WatchdogThread watchdog;
    pgwd::PoolOptions options;
    options.dsn = dsn;
    options.name = "soak";
    options.max_size = pool_size;
    options.min_idle = pool_size / 2;
    options.acquire_timeout = std::chrono::milliseconds(2000);
    pgwd::Pool pool(watchdog, options);
    Counters counters;
    std::vector<std::thread> threads;
    for (int i = 0; i < workers; ++i)
      threads.emplace_back(worker, std::ref(pool), std::ref(counters), workers / rate);
    const double end = now() + seconds;
    while (!stopping.load() && now() < end) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      const pgwd::PoolStats s = pool.stats();
      emit("{\"ev\":\"stats\",\"t\":" + std::to_string(now()) + ",\"ok\":" +
           std::to_string(counters.ok.load()) + ",\"failed\":" + std::to_string(counters.failed.load()) +
           ",\"timeouts\":" + std::to_string(counters.timeouts.load()) + ",\"checkouts\":" +
           std::to_string(s.checkouts) + ",\"found_dead\":" + std::to_string(s.checkouts_found_dead) +
           ",\"replaced\":" + std::to_string(s.replaced) + ",\"idle\":" + std::to_string(s.idle) +
           ",\"in_use\":" + std::to_string(s.in_use) + ",\"rss_kb\":" + std::to_string(rss_kb()) +
           ",\"fds\":" + std::to_string(open_fds()) + "}");
    }
    stopping.store(true);
    for (auto& t : threads) t.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soak_lender: %s\n", e.what());
    return 1;
  }
  return 0;
}
