#include "controller/console/console_server.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include "common/metrics_server.h"
#include "controller/console/console_json.h"
#include "controller/console/console_server_internal.h"
#include "controller/daemon/run_supervisor.h"

namespace faultline::console {

using nlohmann::json;

namespace {

constexpr char kCsp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// What a verified client certificate says; nullopt without one (or one that did not verify).
std::optional<CertificateInfo> PeerCertificate(const httplib::Request& req) {
  if (!req.ssl) return std::nullopt;
  X509* cert = SSL_get1_peer_certificate(req.ssl);
  if (!cert) return std::nullopt;
  std::optional<CertificateInfo> info;
  if (SSL_get_verify_result(req.ssl) == X509_V_OK) {
    info.emplace();
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn) - 1) >
        0) {
      info->common_name = cn;
    }
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
      info->uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                              static_cast<size_t>(ASN1_STRING_length(uri)));
    }
    GENERAL_NAMES_free(names);
  }
  X509_free(cert);
  return info;
}

std::string CookieValue(const httplib::Request& req, const std::string& name) {
  const std::string header = req.get_header_value("Cookie");
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    std::string part = header.substr(pos, end == std::string::npos ? end : end - pos);
    size_t a = part.find_first_not_of(' ');
    if (a != std::string::npos) part = part.substr(a);
    if (part.rfind(name + "=", 0) == 0) return part.substr(name.size() + 1);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return "";
}

}  // namespace

Reply ErrorReply(int status, const std::string& message) {
  return Reply{status, json{{"error", message}}.dump()};
}

int HttpStatusOf(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

Reply StatusReply(const Status& status) {
  return ErrorReply(HttpStatusOf(status.code()), status.message());
}

void SetSecurityHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy", kCsp);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
}

ConsoleServer::Impl::Impl(ConsoleServerOptions o)
    : options(std::move(o)),
      sessions(options.session_ttl, options.max_sessions),
      hub(options.max_streams, options.stream_queue),
      live(
          [this](const std::string& event, const std::string& data) { hub.Publish(event, data); }) {
  if (!options.auth.certificate) options.auth.certificate = CertificatePrincipal;
  if (!options.auth.audit) {
    options.auth.audit = [](const AuditRecord& r) {
      spdlog::info("audit: {} {}{} by {} (role {}, team {}, {}) from {}: {}{}", r.action,
                   r.allowed ? "allowed" : "REFUSED", r.target.empty() ? "" : " " + r.target,
                   r.principal.identity.empty() ? "-" : r.principal.identity,
                   r.principal.identity.empty() ? "-" : RoleName(r.principal.role),
                   r.principal.team, r.principal.source, r.peer, r.detail, "");
    };
  }
}

Result<Principal> ConsoleServer::Impl::Authenticate(const httplib::Request& req) {
  std::string why = "not authenticated: present a client certificate, a bearer token, or log in";
  if (auto cert = PeerCertificate(req)) {
    auto p = options.auth.certificate(*cert);
    if (p.ok()) return p;
    why = p.status().message();
  }
  const std::string authz = req.get_header_value("Authorization");
  if (authz.rfind("Bearer ", 0) == 0) {
    if (!options.auth.token) return Status(StatusCode::kUnauthenticated, "tokens are not enabled");
    auto p = options.auth.token(authz.substr(7));
    if (p.ok()) return p;
    return Status(StatusCode::kUnauthenticated, p.status().message());
  }
  if (std::string id = CookieValue(req, "fl_session"); !id.empty()) {
    if (auto p = sessions.Find(id)) {
      if (p->token_id.empty() || !options.auth.still_valid) return *p;
      Status valid = options.auth.still_valid(*p);
      if (valid.ok()) return *p;
      sessions.Remove(id);
      return Status(StatusCode::kUnauthenticated, "the session's token is no longer valid (" +
                                                      valid.message() + "); log in again");
    }
    why = "the session expired or was logged out; log in again";
  }
  return Status(StatusCode::kUnauthenticated, why);
}

void ConsoleServer::Impl::Audit(const std::string& action, const std::string& target,
                                const Principal& who, const std::string& peer, bool allowed,
                                const std::string& detail) {
  options.auth.audit(AuditRecord{action, target, who, peer, allowed, detail});
}

void ConsoleServer::Impl::Route(const std::string& method, const std::string& pattern,
                                Access access, const std::string& action, const std::string& what,
                                RouteFn fn) {
  auto handler = [this, method, access, action, what, fn](const httplib::Request& req,
                                                          httplib::Response& res) {
    const std::string peer = req.remote_addr + ":" + std::to_string(req.remote_port);
    auto reply = [&](const Reply& r) {
      res.status = r.status;
      if (r.prepared) return;
      if (!r.body.empty() || r.status != 204) res.set_content(r.body, r.content_type.c_str());
    };
    const bool changes = method == "POST" || method == "DELETE";
    // The CSRF rule: a state change needs the console's header and a JSON body (a form or a
    // cross-site fetch cannot set either without a CORS preflight, which is never granted).
    if (changes) {
      if (req.get_header_value("X-Faultline-Console") != "1") {
        Audit(action, "", {}, peer, false, "no X-Faultline-Console header");
        return reply(ErrorReply(403, "X-Faultline-Console: 1 header required on " + method));
      }
      if (req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
        Audit(action, "", {}, peer, false, "Content-Type is not application/json");
        return reply(ErrorReply(403, "Content-Type: application/json required on " + method));
      }
    }
    Call call{req, {}, peer, nullptr};
    if (method == "POST" || (method == "DELETE" && !req.body.empty())) {
      call.body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
      if (call.body.is_discarded() || !call.body.is_object()) {
        return reply(ErrorReply(400, "body: expected a JSON object"));
      }
    }
    if (access != Access::kPublic) {
      auto who = Authenticate(req);
      if (!who.ok()) {
        if (changes) Audit(action, "", {}, peer, false, who.status().message());
        return reply(ErrorReply(401, who.status().message()));
      }
      call.who = *who;
      call.who.peer = peer;
      const Role role = call.who.role;
      if (access == Access::kOperator && role != Role::kOperator) {
        std::string message = std::string("role ") + RoleName(role) + " may not " + what;
        Audit(action, req.path, call.who, peer, false, message);
        return reply(ErrorReply(403, message));
      }
      if (access == Access::kViewer && role != Role::kViewer && role != Role::kOperator) {
        return reply(
            ErrorReply(403, std::string("role ") + RoleName(role) + " may not view the console"));
      }
    }
    reply(fn(call, res));
  };
  if (method == "GET") http->Get(pattern, handler);
  if (method == "POST") http->Post(pattern, handler);
  if (method == "DELETE") http->Delete(pattern, handler);
}

std::string ConsoleServer::Impl::HelloJson(const Principal& who) {
  return json{{"me",
               {{"identity", who.identity},
                {"role", RoleName(who.role)},
                {"team", who.team},
                {"source", who.source}}},
              {"halt", json::parse(HaltJson(live.Halt()))},
              {"active", json::parse(live.ActiveJson())},
              {"recent", json::parse(live.RecentJson())}}
      .dump();
}

void ConsoleServer::Impl::ServeEvents(Call& call, httplib::Response& res) {
  auto stream = hub.Subscribe();
  if (!stream.ok()) {
    res.status = 503;
    res.set_content(json{{"error", stream.status().message()}}.dump(), "application/json");
    return;
  }
  std::shared_ptr<EventStream> s = *stream;
  s->PushFront(FormatServerSentEvent("hello", HelloJson(call.who)));
  const Duration keepalive = options.keepalive;
  auto last_write = std::make_shared<MonoTime>(SystemClock::Instance().Now());
  res.set_chunked_content_provider(
      "text/event-stream",
      [s, keepalive, last_write](size_t, httplib::DataSink& sink) {
        std::optional<std::string> next = s->Next(std::chrono::milliseconds(250));
        if (!next) {
          // Dropped (slow viewer) or the console stops: end the response; the page reconnects.
          sink.done();
          return true;
        }
        const MonoTime now = SystemClock::Instance().Now();
        if (next->empty()) {
          if (now - *last_write < keepalive) return true;
          *next = ": keepalive\n\n";
        }
        *last_write = now;
        return sink.write(next->data(), next->size());
      },
      [s](bool) { s->Leave(); });
}

std::string ConsoleServer::Impl::FleetNow() {
  std::vector<daemon::AgentSnapshot> agents;
  if (backend.agents) agents = backend.agents();
  v1::ListFleetFaultsResponse faults = backend.supervisor->FleetFaults(false);
  return FleetJson(agents, faults, SystemClock::Instance().WallUnixMs());
}

void ConsoleServer::Impl::TickerLoop() {
  std::unique_lock lock(mu);
  while (!stopping) {
    cv.wait_for(lock, options.tick, [&] { return stopping; });
    if (stopping) break;
    lock.unlock();
    // Rendering is for viewers: with none connected nothing is drawn.
    if (hub.open_streams() > 0) live.Tick();
    lock.lock();
  }
}

void ConsoleServer::Impl::FleetLoop() {
  std::unique_lock lock(mu);
  while (!stopping) {
    cv.wait_for(lock, options.fleet_interval, [&] { return stopping; });
    if (stopping) break;
    lock.unlock();
    // The fault list is a fan-out to every agent: only while someone watches.
    if (hub.open_streams() > 0) hub.Publish("fleet", FleetNow());
    lock.lock();
  }
}

ConsoleServer::ConsoleServer(ConsoleServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

ConsoleServer::~ConsoleServer() { Stop(); }

daemon::RunObserver& ConsoleServer::observer() { return impl_->live; }
EventHub& ConsoleServer::hub() { return impl_->hub; }
int ConsoleServer::port() const { return impl_->port; }

std::string ConsoleServer::address() const {
  bool v6 = impl_->host.find(':') != std::string::npos;
  return (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" + std::to_string(impl_->port);
}

Status ConsoleServer::Start(ConsoleBackend backend) {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (s.started) return FailedPrecondition("the console is already started");
    s.started = true;
  }
  if (!backend.supervisor) return FailedPrecondition("the console needs a run supervisor");
  s.backend = std::move(backend);
  int port = 0;
  if (Status st = metrics::ParseListenAddress("--console-listen", s.options.listen, &s.host, &port);
      !st.ok()) {
    return st;
  }
  std::string tls_error;
  const ConsoleServerOptions& o = s.options;
  s.http = std::make_unique<httplib::SSLServer>([&o, &tls_error](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(&ctx, o.cert_file.c_str()) != 1) {
      tls_error = "cannot load the certificate " + o.cert_file;
      return false;
    }
    if (SSL_CTX_use_PrivateKey_file(&ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(&ctx) != 1) {
      tls_error = "cannot load the key " + o.key_file + " (or it does not match the certificate)";
      return false;
    }
    if (!o.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(&ctx, o.ca_file.c_str(), nullptr) != 1) {
        tls_error = "cannot load the CA " + o.ca_file;
        return false;
      }
      // Optional client certificates: asked for, verified when presented, not required (a
      // browser without one logs in with a token).
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, nullptr);
      // With peer verification on, OpenSSL refuses to resume a session (alert "internal
      // error") unless the context names itself; browsers resume on every further connection,
      // so without this the page's script and stylesheet fail to load.
      static constexpr unsigned char kSessionContext[] = "faultline-console";
      SSL_CTX_set_session_id_context(&ctx, kSessionContext, sizeof(kSessionContext) - 1);
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.ca_file.c_str())) {
        SSL_CTX_set_client_CA_list(&ctx, names);
      }
    }
    return true;
  });
  if (!s.http->is_valid()) return InvalidArgument("--console-listen TLS: " + tls_error);
  httplib::SSLServer& http = *s.http;
  // Event streams hold a worker each; the API gets a few more.
  const size_t workers = s.options.max_streams + 8;
  http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  http.set_read_timeout(10, 0);
  http.set_write_timeout(5, 0);
  http.set_keep_alive_timeout(5);
  http.set_payload_max_length(s.options.max_body);
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  const size_t max_body = s.options.max_body;
  http.set_post_routing_handler(
      [](const httplib::Request&, httplib::Response& res) { SetSecurityHeaders(res); });
  http.set_error_handler([max_body](const httplib::Request& req, httplib::Response& res) {
    SetSecurityHeaders(res);
    if (!res.body.empty()) return;
    std::string message = res.status == 413
                              ? "body: larger than " + std::to_string(max_body) + " bytes"
                          : res.status == 404 ? "not found: " + req.path
                                              : "request refused";
    res.set_content(json{{"error", message}}.dump(), "application/json");
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        SetSecurityHeaders(res);
        res.set_content(json{{"error", "internal error"}}.dump(), "application/json");
      });
  s.RegisterRoutes();
  int bound =
      port == 0 ? http.bind_to_any_port(s.host) : (http.bind_to_port(s.host, port) ? port : -1);
  if (bound <= 0) {
    return Unavailable("--console-listen '" + s.options.listen + "': cannot bind");
  }
  s.port = bound;
  s.live.OnStartHalted(s.backend.supervisor->halted());
  auto finished = std::make_shared<std::atomic<bool>>(false);
  s.serve_thread = std::thread([&http, finished] {
    http.listen_after_bind();
    *finished = true;
  });
  // httplib's stop() is a no-op until the accept loop runs.
  while (!http.is_running() && !*finished)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.ticker_thread = std::thread([&s] { s.TickerLoop(); });
  s.fleet_thread = std::thread([&s] { s.FleetLoop(); });
  spdlog::info("console on https://{} (client certificates {})", address(),
               s.options.ca_file.empty() ? "not requested" : "optional, verified by the fleet CA");
  return Status::Ok();
}

void ConsoleServer::Stop() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (s.stopping) return;
    s.stopping = true;
  }
  s.cv.notify_all();
  s.hub.Close();
  if (s.http) s.http->stop();
  for (std::thread* t : {&s.serve_thread, &s.ticker_thread, &s.fleet_thread}) {
    if (t->joinable()) t->join();
  }
}

}  // namespace faultline::console
