#include <arpa/inet.h>

#include <algorithm>
#include <string>

#include "agent/host/host_addresses.h"

namespace faultline::agent::host {

Result<Cidr> ParseCidr(const std::string& text) {
  std::string addr = text;
  int prefix = -1;
  size_t slash = text.find('/');
  if (slash != std::string::npos) {
    addr = text.substr(0, slash);
    std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument("invalid prefix length in '" + text + "'");
    }
    prefix = std::stoi(p);
  }
  unsigned char bytes[16] = {};
  Cidr c;
  if (inet_pton(AF_INET, addr.c_str(), bytes) == 1) {
    c.v6 = false;
  } else if (inet_pton(AF_INET6, addr.c_str(), bytes) == 1) {
    c.v6 = true;
  } else {
    return InvalidArgument("'" + text + "' is not an IPv4/IPv6 address or CIDR");
  }
  int bits = c.v6 ? 128 : 32;
  if (prefix > bits) return InvalidArgument("prefix length too long in '" + text + "'");
  if (prefix < 0) prefix = bits;
  for (int i = 0; i < bits / 8; ++i) {
    int keep = std::clamp(prefix - i * 8, 0, 8);
    bytes[i] &= static_cast<unsigned char>(0xff00 >> keep);
  }
  char out[INET6_ADDRSTRLEN] = {};
  inet_ntop(c.v6 ? AF_INET6 : AF_INET, bytes, out, sizeof(out));
  c.text = out;
  if (prefix != bits) c.text += "/" + std::to_string(prefix);
  return c;
}

}  // namespace faultline::agent::host
