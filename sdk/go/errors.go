package sdk

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the SDK returns for one of these conditions
// matches the sentinel with errors.Is; when a lower-level cause exists it
// matches too (errors.Is / errors.As see both).

// Starting the rpc process (NewClient).
var (
	ErrStdinPipe  = errors.New("get stdin pipe")
	ErrStdoutPipe = errors.New("get stdout pipe")
	ErrStderrPipe = errors.New("get stderr pipe")
	ErrStartProc  = errors.New("start matchlock")
)

// Request lifecycle.
var (
	ErrClientClosed    = errors.New("client is closed")
	ErrMarshalRequest  = errors.New("marshal request")
	ErrWriteRequest    = errors.New("write request")
	ErrConnectionClose = errors.New("connection closed")
)

// Create / sandbox configuration.
var (
	ErrImageRequired      = errors.New("image is required (e.g., alpine:latest)")
	ErrInvalidCPUCount    = errors.New("cpu count must be > 0")
	ErrInvalidNetworkMTU  = errors.New("network mtu must be > 0")
	ErrNoNetworkConflict  = errors.New("no network cannot be combined with allowed hosts, secrets, forced interception, or network interception rules")
	ErrInvalidAddHost     = errors.New("invalid add-host mapping")
	ErrInvalidNetworkHook = errors.New("invalid network hook")
	ErrParseCreateResult  = errors.New("parse create result")
	ErrInvalidVFSHook     = errors.New("invalid vfs hook")
	ErrVFSHookBlocked     = errors.New("vfs hook blocked operation")
	ErrParsePortForwards  = errors.New("parse port-forward spec")
	ErrParsePortBindings  = errors.New("parse port-forward result")
)

// Exec.
var (
	ErrParseExecResult       = errors.New("parse exec result")
	ErrParseExecStreamResult = errors.New("parse exec_stream result")
	ErrParseExecPipeResult   = errors.New("parse exec_pipe result")
	ErrParseExecTTYResult    = errors.New("parse exec_tty result")
	ErrParseLogResult        = errors.New("parse log result")
)

// Files and allow-list.
var (
	ErrParseReadResult = errors.New("parse read result")
	ErrParseListResult = errors.New("parse list result")
	ErrAllowListHosts  = errors.New("allow-list hosts are required")
	ErrParseAllowList  = errors.New("parse allow-list result")
)

// Close, remove and volumes.
var (
	ErrCloseTimeout            = errors.New("close timed out, process killed")
	ErrRemoveVM                = errors.New("matchlock rm")
	ErrBinaryPathRequired      = errors.New("matchlock binary path is required")
	ErrVolumeNameRequired      = errors.New("volume name is required")
	ErrInvalidVolumeSize       = errors.New("volume size must be > 0")
	ErrVolumeCommand           = errors.New("matchlock volume command")
	ErrParseVolumeCreateResult = errors.New("parse volume create result")
	ErrParseVolumeListResult   = errors.New("parse volume list result")
)

// sdkError ties a sentinel to an optional cause and extra detail. It unwraps
// to the sentinel and also reports the cause to errors.Is / errors.As, so both
// can be tested for (Go 1.19 has no multi-%w).
type sdkError struct {
	sentinel error
	detail   string
	cause    error
}

func (e *sdkError) Error() string {
	msg := e.sentinel.Error() + e.detail
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}

func (e *sdkError) Unwrap() error { return e.sentinel }

func (e *sdkError) Is(target error) bool {
	return e.cause != nil && errors.Is(e.cause, target)
}

func (e *sdkError) As(target interface{}) bool {
	return e.cause != nil && errors.As(e.cause, target)
}

// wrapErr returns sentinel annotated with cause.
func wrapErr(sentinel, cause error) error {
	return &sdkError{sentinel: sentinel, cause: cause}
}

// withDetail returns sentinel followed by a formatted detail (e.g. " after 2s").
func withDetail(sentinel error, format string, args ...interface{}) error {
	return &sdkError{sentinel: sentinel, detail: fmt.Sprintf(format, args...)}
}

// withDetailCause is withDetail plus a cause.
func withDetailCause(sentinel, cause error, format string, args ...interface{}) error {
	return &sdkError{sentinel: sentinel, detail: fmt.Sprintf(format, args...), cause: cause}
}
