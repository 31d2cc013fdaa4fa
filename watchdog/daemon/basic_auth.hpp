#pragma once

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace pgwd::daemon {

/// Checks HTTP basic-auth credentials against bcrypt hashes (web config `basic_auth_users`) with
/// libxcrypt's crypt_rn, which implements $2a$/$2b$/$2y$ bcrypt on Debian 12.
///
/// bcrypt is slow on purpose (about 50-100 ms at cost 10), and Prometheus sends the same
/// credentials with every scrape: like exporter-toolkit, a successful check is cached (per user,
/// a SHA-256 of user, password and hash, never the password itself), so that only the first
/// scrape pays. Every comparison is constant-time (CRYPTO_memcmp); an unknown user costs one
/// bcrypt too, so timing does not tell which users exist. Thread-safe.
class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users);

  bool enabled() const noexcept { return !users_.empty(); }
  bool verify(std::string_view user, std::string_view password);

 private:
  using Digest = std::array<unsigned char, 32>;
  static Digest digest(std::string_view user, std::string_view password, std::string_view hash);

  const std::map<std::string, std::string> users_;
  std::mutex mutex_;  // guards verified_
  std::map<std::string, Digest, std::less<>> verified_;
};

}  // namespace pgwd::daemon
