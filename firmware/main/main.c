/* main.c - hil-agent on ESP-IDF: app_main starts the agent task.
 *
 * ESP-IDF v5.1 - v5.4. xTaskCreate takes the stack depth in BYTES on ESP-IDF
 * FreeRTOS (docs/en/api-reference/system/freertos_idf.rst, v5.1 and v5.4.2).
 *
 * The agent task owns everything the core touches; the core is single-threaded
 * and other tasks reach it only through the port's event queue. Its stack
 * (CONFIG_HIL_AGENT_TASK_STACK_SIZE, 12 KiB) is sized for mbedTLS handshakes:
 * see main/Kconfig.projbuild. The agent itself (agent_new: two 8 KiB MQTT
 * buffers) lives on the heap; the port sees only agent.h and agent_port.h. */
#include <stdlib.h>

#include "agent.h"
#include "esp_log.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "port.h"
#include "sdkconfig.h"

static const char *TAG = "hil-port";

static void agent_task(void *arg)
{
    hil_port_t *hp = arg;
    agent_port_t port;
    if (hil_port_init(hp, &port) != ESP_OK) {
        /* the console is the rig's only link: nothing useful can run without it */
        ESP_LOGE(TAG, "console UART setup failed; restarting");
        vTaskDelay(pdMS_TO_TICKS(1000));
        esp_restart();
    }
    agent_t *a = agent_new(&port);
    if (!a) {
        ESP_LOGE(TAG, "out of memory for the agent; restarting");
        vTaskDelay(pdMS_TO_TICKS(1000));
        esp_restart();
    }
    /* agent_run: the banner, the station started when wifi.sta.ssid is saved, then the loop */
    agent_run(a); /* returns only if the console reports EOF, which a UART never does */
    agent_delete(a);
    esp_restart();
}

void app_main(void)
{
    static hil_port_t hp; /* lives as long as the firmware */
    if (xTaskCreate(agent_task, "hil_agent", CONFIG_HIL_AGENT_TASK_STACK_SIZE, &hp,
                    CONFIG_HIL_AGENT_TASK_PRIORITY, NULL) != pdPASS) {
        ESP_LOGE(TAG, "cannot create the agent task (%d bytes of stack)",
                 CONFIG_HIL_AGENT_TASK_STACK_SIZE);
        esp_restart();
    }
}
