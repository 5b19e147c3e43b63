/* SPDX-License-Identifier: MIT */
/* gettext for shadowmeshctl: every user-visible string goes through _() (domain "shadowmesh"). */
#pragma once

#include <libintl.h>

#define _(s) gettext(s)
/* Marks a string for extraction where it must stay a constant (tables); translate at use. */
#define N_(s) s
