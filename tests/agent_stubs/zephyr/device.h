/* Stand-in for <zephyr/device.h>: only what the README's Zephyr example uses (tests). */
#ifndef AGENT_STUB_ZEPHYR_DEVICE_H
#define AGENT_STUB_ZEPHYR_DEVICE_H

#include <stdbool.h>

struct device {
    const char *name;
};
extern const struct device agent_stub_console;
#define DT_CHOSEN(prop) prop
#define DEVICE_DT_GET(node) (&agent_stub_console)
bool device_is_ready(const struct device *dev);

#endif
