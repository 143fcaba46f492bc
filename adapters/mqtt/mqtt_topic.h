/* SPDX-License-Identifier: Apache-2.0 */
/* MQTT topic names and topic filters: validation, `$share/<group>/<filter>` parsing, matching a
 * filter against a topic name (MQTT 5 section 4.7, the same rules as 3.1.1), and the first
 * level of a topic, which the adapter maps to a native topic. Pure functions over borrowed
 * bytes; none of them reads outside the slices it is given, whatever they hold. */
#ifndef FERRY_ADAPTERS_MQTT_MQTT_TOPIC_H
#define FERRY_ADAPTERS_MQTT_MQTT_TOPIC_H

#include "common/record.h"

#include <stdbool.h>

/* True if t is a valid topic name for PUBLISH: 1..65535 bytes of valid UTF-8 without U+0000
 * and without the wildcard characters '+' and '#'. The empty name of an MQTT 5 PUBLISH that
 * uses a topic alias is the caller's case (this returns false for it). */
bool fy_mqtt_topic_name_valid(fy_slice t);

/* True if f is a valid topic filter: 1..65535 bytes of valid UTF-8 without U+0000, '+' only as
 * a whole level, '#' only as the whole last level. Says nothing about "$share/": see
 * fy_mqtt_share_parse. */
bool fy_mqtt_filter_valid(fy_slice f);

#define FY_MQTT_SHARE_INVALID (-1) /* starts with "$share/" but is not a valid shared filter */
#define FY_MQTT_SHARE_NONE 0       /* not a shared subscription */
#define FY_MQTT_SHARE_OK 1         /* a valid shared subscription */

/* Recognises a shared subscription "$share/<group>/<filter>". Returns FY_MQTT_SHARE_NONE if f
 * does not start with "$share/" (group and rest untouched); FY_MQTT_SHARE_OK with group and rest
 * pointing into f if the group is non-empty without '/', '+' or '#' and rest is a valid filter
 * (fy_mqtt_filter_valid); FY_MQTT_SHARE_INVALID otherwise (the SUBACK answer is 0x8F). */
int fy_mqtt_share_parse(fy_slice f, fy_slice *group, fy_slice *rest);

/* True if topic name t matches filter f, per MQTT 5 section 4.7: '+' matches exactly one level
 * (possibly empty), '#' matches any number of levels including the parent ("sport/#" matches
 * "sport"), and a filter starting with '+' or '#' does not match a name starting with '$'.
 * Both are expected valid (f without "$share/<group>/"); for invalid input the answer is
 * unspecified but the function stays in bounds. */
bool fy_mqtt_match(fy_slice f, fy_slice t);

/* The first level of a topic name or filter: the bytes before the first '/' (all of t if it
 * has none; empty for "/a/b"). Points into t. */
fy_slice fy_mqtt_first_level(fy_slice t);

#endif
