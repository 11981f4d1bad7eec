#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, beside any RabbitMQ already running here.
#
#   tests/cluster/rabbitmq-cluster.sh start|stop|status
#   tests/cluster/rabbitmq-cluster.sh start-node|stop-node|kill-node N     (N = 0, 1, 2)
#   tests/cluster/rabbitmq-cluster.sh ctl N ARGS...    rabbitmqctl ARGS against node N
#
# Node N is yekuo-<amqp port>@localhost, listening for AMQP on 127.0.0.1:<first port + N> (guest/guest,
# vhost /). Everything it owns stays apart from a system service: its own distribution port, its own
# epmd on its own port (a system node's epmd never learns these names), its own configuration, cookie,
# data and log directories under YEKUO_RABBIT_CLUSTER_DIR, and no plugins. Two clusters at once need
# another directory and another first port.
#
#   YEKUO_RABBIT_CLUSTER_DIR        default /tmp/yekuo-rabbit-cluster-<first port>
#   YEKUO_RABBIT_CLUSTER_AMQP_PORT  first AMQP port, default 5681 (nodes: 5681, 5682, 5683)
#   Distribution ports: AMQP port + 20000; epmd: first AMQP port + 20010.
#   RABBITMQ_SCRIPTS_DIR            where rabbitmq-server and rabbitmqctl are, if not on the Debian path
#
# start first stops whatever a previous run left (live nodes included) and wipes its directory, so it
# can be run again after a killed run. stop kills the nodes and removes the directory: the data is
# thrown away anyway, so nothing is gained by a graceful shutdown there.
set -euo pipefail

FIRST_PORT="${YEKUO_RABBIT_CLUSTER_AMQP_PORT:-5681}"
BASE="${YEKUO_RABBIT_CLUSTER_DIR:-/tmp/yekuo-rabbit-cluster-${FIRST_PORT}}"
NODES=3
EPMD_PORT=$((FIRST_PORT + 20010))
STARTUP_TIMEOUT_S=90

# Debian's /usr/sbin wrappers switch to the rabbitmq user and its cookie; the scripts under them do not.
if [[ -z "${RABBITMQ_SCRIPTS_DIR:-}" ]]; then
    if [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
        RABBITMQ_SCRIPTS_DIR=/usr/lib/rabbitmq/bin
    elif command -v rabbitmq-server >/dev/null; then
        RABBITMQ_SCRIPTS_DIR="$(dirname "$(command -v rabbitmq-server)")"
    else
        echo "rabbitmq-server is not installed (set RABBITMQ_SCRIPTS_DIR)" >&2
        exit 2
    fi
fi

# The node's Erlang VM and every CLI call share these: the cookie in $HOME, our epmd, loopback only.
export HOME="$BASE"
export ERL_EPMD_PORT="$EPMD_PORT"
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_CONF_ENV_FILE="$BASE/rabbitmq-env.conf"

amqp_port() { echo $((FIRST_PORT + $1)); }
node_name() { echo "yekuo-$(amqp_port "$1")@localhost"; }
node_dir() { echo "$BASE/node$1"; }
pid_file() { echo "$(node_dir "$1")/rabbitmq.pid"; }

ctl() {
    local index=$1
    shift
    "$RABBITMQ_SCRIPTS_DIR/rabbitmqctl" -n "$(node_name "$index")" "$@"
}

check_index() {
    if [[ ! "${1:-}" =~ ^[0-9]+$ ]] || (($1 >= NODES)); then
        echo "node index must be 0..$((NODES - 1)), got '${1:-}'" >&2
        exit 2
    fi
}

prepare() {
    mkdir -p "$BASE"
    # Empty files and folders of our own keep a system node's out (/etc/rabbitmq/rabbitmq-env.conf sets
    # its node name, rabbitmq.conf its listener, conf.d may add more).
    : >"$BASE/rabbitmq-env.conf"
    # A fresh cookie per cluster: no node of another run can join this one by mistake.
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$BASE/.erlang.cookie"
    chmod 400 "$BASE/.erlang.cookie"
    local index dir
    for ((index = 0; index < NODES; index++)); do
        dir="$(node_dir "$index")"
        mkdir -p "$dir/log" "$dir/conf.d"
        echo "[]." >"$dir/enabled_plugins"
        cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$(amqp_port "$index")
log.file.level = info
log.console = false
EOF
        echo "[]." >"$dir/advanced.config"
    done
}

launch() {
    local index=$1 dir
    dir="$(node_dir "$index")"
    # setsid: the node outlives this script and is no child of a test runner's process group.
    env \
        RABBITMQ_NODENAME="$(node_name "$index")" \
        RABBITMQ_NODE_PORT="$(amqp_port "$index")" \
        RABBITMQ_DIST_PORT=$(($(amqp_port "$index") + 20000)) \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
        RABBITMQ_CONFIG_FILES="$dir/conf.d" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        RABBITMQ_MNESIA_BASE="$dir/mnesia" \
        RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_PID_FILE="$(pid_file "$index")" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        setsid "$RABBITMQ_SCRIPTS_DIR/rabbitmq-server" >"$dir/log/startup.log" 2>&1 </dev/null &
}

await_node() {
    local index=$1
    if ! ctl "$index" -q wait --timeout "$STARTUP_TIMEOUT_S" "$(pid_file "$index")" >/dev/null; then
        echo "node $(node_name "$index") did not start; its log:" >&2
        tail -n 30 "$(node_dir "$index")/log/startup.log" >&2 || true
        exit 1
    fi
}

node_pid() {
    local file
    file="$(pid_file "$1")"
    [[ -s "$file" ]] && cat "$file"
}

kill_node() {
    local index=$1 pid
    pid="$(node_pid "$index" || true)"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$(pid_file "$index")"
}

stop_node() {
    local index=$1
    ctl "$index" -q stop "$(pid_file "$index")" >/dev/null
}

start_node() {
    local index=$1 pid
    pid="$(node_pid "$index" || true)"
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
        launch "$index"
    fi
    await_node "$index"
}

running_nodes() {
    # The running members node $1 knows, space-separated: the list in its JSON cluster status.
    ctl "$1" -q cluster_status --formatter json 2>/dev/null |
        grep -o '"running_nodes":\[[^]]*\]' | sed -e 's/^.*\[//' -e 's/\]$//' -e 's/"//g' -e 's/,/ /g'
}

await_clustered() {
    local deadline=$((SECONDS + STARTUP_TIMEOUT_S)) index running
    while true; do
        running="$(running_nodes 0 || true)"
        local all=1
        for ((index = 0; index < NODES; index++)); do
            [[ " $running " == *" $(node_name "$index") "* ]] || all=0
        done
        ((all)) && return 0
        if ((SECONDS >= deadline)); then
            echo "the cluster did not form; running: ${running:-none}" >&2
            exit 1
        fi
        sleep 0.5
    done
}

stop_all() {
    local index
    for ((index = 0; index < NODES; index++)); do
        kill_node "$index"
    done
    # Our own epmd only: it answers on our port, and refuses to die while a node is still registered.
    if command -v epmd >/dev/null; then
        epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
    fi
    rm -rf "$BASE"
}

start_all() {
    local started=$SECONDS index
    stop_all
    prepare
    for ((index = 0; index < NODES; index++)); do
        launch "$index"
    done
    for ((index = 0; index < NODES; index++)); do
        await_node "$index"
    done
    for ((index = 1; index < NODES; index++)); do
        ctl "$index" -q stop_app
        ctl "$index" -q join_cluster "$(node_name 0)"
        ctl "$index" -q start_app
    done
    await_clustered
    local urls=()
    for ((index = 0; index < NODES; index++)); do
        urls+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$index")/")
    done
    echo "cluster of $NODES nodes running in $((SECONDS - started)) s:"
    (
        IFS=,
        echo "${urls[*]}"
    )
}

status() {
    # Exit status 0 when every node runs, 3 (LSB: not running) otherwise.
    local index pid state down=0
    for ((index = 0; index < NODES; index++)); do
        pid="$(node_pid "$index" 2>/dev/null || true)"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            state="running (pid $pid)"
        else
            state="down"
            down=1
        fi
        echo "$(node_name "$index") amqp 127.0.0.1:$(amqp_port "$index") $state"
    done
    if ((down)); then
        return 3
    fi
    echo "cluster members running: $(running_nodes 0 || echo "?")"
}

case "${1:-}" in
    start) start_all ;;
    stop) stop_all ;;
    status) status ;;
    start-node)
        check_index "${2:-}"
        start_node "$2"
        ;;
    stop-node)
        check_index "${2:-}"
        stop_node "$2"
        ;;
    kill-node)
        check_index "${2:-}"
        kill_node "$2"
        ;;
    ctl)
        check_index "${2:-}"
        index=$2
        shift 2
        ctl "$index" "$@"
        ;;
    *)
        echo "usage: $0 start|stop|status|start-node N|stop-node N|kill-node N|ctl N ARGS..." >&2
        exit 2
        ;;
esac
