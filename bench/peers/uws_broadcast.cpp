// SPDX-License-Identifier: MIT
// The peer "uws" in bench/run.sh --peers: a topic broadcaster on uWebSockets
// (epoll, no SSL, one loop on one thread), speaking the same routes as ringcast so
// the same bench drives both:
//   GET  /ws?topics=a,b   upgrades and subscribes the socket to each topic
//   POST /publish/<topic> publishes the body (ringcast-bench --publish-mode single)
//   POST /publish         ringcast's batch format: "TOPIC LEN\nPAYLOAD\n" records
//   GET  /healthz         200
// Every message goes out as a payload-only text frame through uWS's own pub/sub
// (App::publish), which corks each subscriber's frames of one loop iteration into
// one write. Built by bench/peers/build_uws.sh from the public uWebSockets and
// uSockets repositories; usage: uws_broadcast PORT
#include "App.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

struct PerSocketData {
  std::string topics; // the ?topics= value, subscribed in open
};

uWS::App *app;

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1; };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Publishes every "TOPIC LEN\nPAYLOAD\n" record of a batch body; -1 if malformed.
long publish_batch(std::string_view b) {
  long n = 0;
  size_t pos = 0;
  while (pos < b.size()) {
    size_t sp = b.find(' ', pos);
    if (sp == std::string_view::npos) return -1;
    size_t nl = b.find('\n', sp);
    if (nl == std::string_view::npos) return -1;
    char *end;
    std::string lenstr(b.substr(sp + 1, nl - sp - 1));
    unsigned long len = strtoul(lenstr.c_str(), &end, 10);
    if (lenstr.empty() || *end || len > b.size() - nl - 1) return -1;
    app->publish(b.substr(pos, sp - pos), b.substr(nl + 1, len), uWS::OpCode::TEXT);
    n++;
    pos = nl + 1 + len;
    if (pos < b.size() && b[pos] == '\n') pos++;
  }
  return n;
}

// Reads the whole body (it may arrive in several onData chunks), then publishes.
// topic empty: a batch body; otherwise the body is one message to that topic.
void on_publish(uWS::HttpResponse<false> *res, std::string topic) {
  res->onAborted([]() {});
  res->onData([res, topic = std::move(topic), body = std::string()](std::string_view chunk, bool last) mutable {
    body.append(chunk);
    if (!last) return;
    long n = 1;
    if (topic.empty())
      n = publish_batch(body);
    else
      app->publish(topic, body, uWS::OpCode::TEXT);
    if (n < 0) {
      res->writeStatus("400 Bad Request")->end("{\"ok\":false,\"error\":\"bad batch\"}\n");
      return;
    }
    res->writeHeader("Content-Type", "application/json")
        ->end("{\"ok\":true,\"published\":" + std::to_string(n) + "}\n");
  });
}

} // namespace

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8081;
  uWS::App a;
  app = &a;
  a.ws<PerSocketData>("/ws", {
      .compression = uWS::DISABLED,
      .maxPayloadLength = 64 * 1024,
      .idleTimeout = 0,                   // off: the bench's subscribers never send
      .maxBackpressure = 16 * 1024 * 1024, // W1/W5 backlogs stay below it: nothing dropped
      .closeOnBackpressureLimit = false,
      .resetIdleTimeoutOnSend = false,
      .sendPingsAutomatically = false,
      .upgrade = [](auto *res, auto *req, auto *context) {
        res->template upgrade<PerSocketData>({.topics = std::string(req->getQuery("topics"))},
                                             req->getHeader("sec-websocket-key"),
                                             req->getHeader("sec-websocket-protocol"),
                                             req->getHeader("sec-websocket-extensions"), context);
      },
      .open = [](auto *ws) {
        std::string_view t = ws->getUserData()->topics;
        while (!t.empty()) {
          size_t c = t.find(',');
          std::string_view one = t.substr(0, c);
          if (!one.empty()) ws->subscribe(one);
          t = c == std::string_view::npos ? std::string_view() : t.substr(c + 1);
        }
      },
  });
  a.post("/publish", [](auto *res, auto *) { on_publish(res, std::string()); });
  a.post("/publish/:topic", [](auto *res, auto *req) { on_publish(res, percent_decode(req->getParameter(0))); });
  a.get("/healthz", [](auto *res, auto *) { res->end("ok\n"); });
  a.any("/*", [](auto *res, auto *) { res->writeStatus("404 Not Found")->end(); });
  a.listen("127.0.0.1", port, [port](auto *listen_socket) {
    if (!listen_socket) {
      fprintf(stderr, "uws_broadcast: cannot listen on 127.0.0.1:%d\n", port);
      exit(1);
    }
  });
  a.run();
  return 0;
}
