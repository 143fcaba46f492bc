/* SPDX-License-Identifier: Apache-2.0 */
/* Serves the web console's built-in files (broker/console.h): strong ETags with revalidation on
 * every load (`Cache-Control: no-cache`), so that an upgraded ferryd is never shown with an old
 * script, and a Content-Security-Policy that allows only the console's own files. */
#include "broker/console.h"

#include <event2/buffer.h>
#include <event2/http.h>

#include <stdio.h>
#include <string.h>

const fy_console_file *fy_console_find(const char *path)
{
    if (strcmp(path, "/") == 0) {
        path = "/index.html";
    }
    for (size_t i = 0; i < fy_console_nfiles; i++) {
        if (strcmp(fy_console_files[i].path, path) == 0) {
            return &fy_console_files[i];
        }
    }
    return NULL;
}

/* Whether an If-None-Match header names etag (a list, or *). */
static bool etag_matches(const char *inm, const char *etag)
{
    size_t n = strlen(etag);
    if (strcmp(inm, "*") == 0) {
        return true;
    }
    for (const char *p = strstr(inm, etag); p; p = strstr(p + 1, etag)) {
        bool start = p == inm || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/';
        bool end = p[n] == '\0' || p[n] == ' ' || p[n] == ',';
        if (start && end) {
            return true;
        }
    }
    return false;
}

void fy_console_serve(struct evhttp_request *req, const fy_console_file *f)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *inm;
    struct evbuffer *out;
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(h, "Allow", "GET, HEAD");
        evhttp_add_header(h, "Content-Type", "application/json");
        out = evbuffer_new();
        evbuffer_add_printf(out, "{\"status\":405,\"error\":\"method not allowed\"}\n");
        evhttp_send_reply(req, 405, "Method Not Allowed", out);
        evbuffer_free(out);
        return;
    }
    evhttp_add_header(h, "ETag", f->etag);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                      "form-action 'self'");
    inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
    if (inm && etag_matches(inm, f->etag)) {
        evhttp_send_reply(req, 304, "Not Modified", NULL);
        return;
    }
    evhttp_add_header(h, "Content-Type", f->content_type);
    out = evbuffer_new();
    if (cmd == EVHTTP_REQ_GET) {
        evbuffer_add_reference(out, f->data, f->len, NULL, NULL);
    } else {
        /* HEAD: the length of what GET would send, and no body */
        char len[32];
        snprintf(len, sizeof(len), "%zu", f->len);
        evhttp_add_header(h, "Content-Length", len);
    }
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}
