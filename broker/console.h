/* SPDX-License-Identifier: Apache-2.0 */
/* The web console's static files, built into ferryd (cmake/embed_files.cmake turns console/
 * into a generated C array) and served by the admin listener at `/`. Loop thread only. */
#ifndef FERRY_BROKER_CONSOLE_H
#define FERRY_BROKER_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

struct evhttp_request;

typedef struct fy_console_file {
    const char *path;         /* URL path: "/index.html" */
    const char *content_type; /* from the extension */
    const char *etag;         /* quoted: "\"0123456789abcdef\"" */
    const unsigned char *data;
    size_t len;
} fy_console_file;

/* The generated table (console_files.c in the build directory). */
extern const fy_console_file fy_console_files[];
extern const size_t fy_console_nfiles;

/* The file served at path ("/" is "/index.html"), or NULL. */
const fy_console_file *fy_console_find(const char *path);

/* Answers a request for a console file: 200 with the file (HEAD: headers only), 304 when its
 * If-None-Match holds the file's ETag, 405 for other methods. The caller has checked
 * authentication. */
void fy_console_serve(struct evhttp_request *req, const fy_console_file *f);

#endif
