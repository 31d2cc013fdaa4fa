#pragma once

#include <crypt.h>

#include <stdexcept>
#include <string>

namespace pgwd::testing {

/// A bcrypt hash of `password` ($2y$, as htpasswd -B writes it), made with libxcrypt: what a
/// web config's basic_auth_users holds. Cost 10 is what users write; tests that only need a
/// valid hash may take less, since each check then costs less.
inline std::string bcrypt_hash(const std::string& password, int cost = 10) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (!crypt_gensalt_rn("$2y$", static_cast<unsigned long>(cost), nullptr, 0, salt, sizeof salt))
    throw std::runtime_error("crypt_gensalt_rn failed");
  crypt_data data{};
  const char* hash = crypt_rn(password.c_str(), salt, &data, sizeof data);
  if (!hash || hash[0] == '*') throw std::runtime_error("crypt_rn failed");
  return hash;
}

}  // namespace pgwd::testing
