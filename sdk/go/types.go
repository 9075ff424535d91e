package sdk

import (
	"context"
	"time"
)

// Defaults applied by Create for resources left at zero (the original's).
const (
	DefaultCPUs           = 1
	DefaultMemoryMB       = 512
	DefaultDiskSizeMB     = 5120
	DefaultTimeoutSeconds = 300
	// DefaultWorkspace is the conventional guest mount point of the VFS.
	DefaultWorkspace = "/workspace"
)

// Mount types for MountConfig.Type.
const (
	MountTypeMemory  = "memory"
	MountTypeHostFS  = "host_fs"
	MountTypeOverlay = "overlay"
)

// CreateOptions is the full sandbox configuration sent by Create.
type CreateOptions struct {
	// Image is the container image reference (required, e.g. alpine:latest).
	Image string
	// Privileged skips in-guest security restrictions.
	Privileged bool
	// CPUs is the number of vCPUs (fractions allowed; default 1).
	CPUs float64
	// MemoryMB is the memory in megabytes (default 512).
	MemoryMB int
	// DiskSizeMB is the disk size in megabytes (default 5120).
	DiskSizeMB int
	// TimeoutSeconds is sent as resources.timeout_seconds (default 300); the
	// server accepts and ignores it, as the original does.
	TimeoutSeconds int
	// AllowedHosts is the egress allow-list (glob patterns).
	AllowedHosts []string
	// AddHosts are static host-to-IP entries for the guest's /etc/hosts.
	AddHosts []HostIPMapping
	// BlockPrivateIPs with BlockPrivateIPsSet expresses an explicit choice;
	// unset, private ranges stay blocked.
	BlockPrivateIPs    bool
	BlockPrivateIPsSet bool
	// NoNetwork removes the guest NIC entirely.
	NoNetwork bool
	// ForceInterception turns on the intercepting proxy even without
	// allow-list, secrets or rules (for runtime allow-list changes).
	ForceInterception bool
	// NetworkInterception holds network hook rules.
	NetworkInterception *NetworkInterceptionConfig
	// Mounts are VFS mounts keyed by guest path.
	Mounts map[string]MountConfig
	// Env holds non-secret environment variables for commands.
	Env map[string]string
	// Secrets are injected by the host proxy; the guest only sees placeholders.
	Secrets []Secret
	// Workspace is the VFS mount point in the guest.
	Workspace string
	// VFSInterception holds VFS hook rules.
	VFSInterception *VFSInterceptionConfig
	// DNSServers overrides the guest's DNS servers.
	DNSServers []string
	// Hostname overrides the guest hostname (default: the sandbox ID).
	Hostname string
	// NetworkMTU overrides the guest MTU (default 1500).
	NetworkMTU int
	// PortForwards are applied with port_forward right after create.
	PortForwards []PortForward
	// PortForwardAddresses are the host bind addresses for PortForwards
	// (default 127.0.0.1).
	PortForwardAddresses []string
	// ImageConfig overrides the image's USER, WORKDIR, ENTRYPOINT, CMD, ENV.
	ImageConfig *ImageConfig
	// ExtraDisks attaches ext4 disk images (see Client.VolumeCreate).
	ExtraDisks []ExtraDisk
	// LaunchEntrypoint starts the image ENTRYPOINT/CMD in the background
	// during create. Launch sets it; Create leaves it as given.
	LaunchEntrypoint bool
}

// HostIPMapping is one static /etc/hosts entry.
type HostIPMapping struct {
	Host string `json:"host"`
	IP   string `json:"ip"`
}

// ExtraDisk attaches an ext4 image from the host at a guest mount point.
type ExtraDisk struct {
	HostPath   string `json:"host_path"`
	GuestMount string `json:"guest_mount"`
	ReadOnly   bool   `json:"readonly,omitempty"`
}

// ImageConfig overrides OCI image metadata, field by field.
type ImageConfig struct {
	User       string            `json:"user,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
}

// Secret is exposed to the guest as an environment variable holding a
// placeholder; the host proxy swaps in Value on requests to Hosts only.
type Secret struct {
	// Name is the environment variable name (e.g. "ANTHROPIC_API_KEY").
	Name string
	// Value is the real secret; it never enters the sandbox.
	Value string
	// Placeholder, when set, is used instead of a generated placeholder.
	Placeholder string
	// Hosts may receive the secret (glob patterns).
	Hosts []string
}

// PortForward maps a local host port to a guest port.
type PortForward struct {
	LocalPort  int `json:"local_port"`
	RemotePort int `json:"remote_port"`
}

// PortForwardBinding is a listener the server opened for a PortForward.
type PortForwardBinding struct {
	Address    string `json:"address"`
	LocalPort  int    `json:"local_port"`
	RemotePort int    `json:"remote_port"`
}

// MountConfig is one VFS mount.
type MountConfig struct {
	Type     string `json:"type"` // memory, host_fs, overlay
	HostPath string `json:"host_path,omitempty"`
	Readonly bool   `json:"readonly,omitempty"`
}

// FileInfo describes one entry of ListFiles.
type FileInfo struct {
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	Mode  uint32 `json:"mode"`
	IsDir bool   `json:"is_dir"`
	// ModTime is the last modification time when the server sends one
	// (RFC 3339); zero otherwise.
	ModTime time.Time `json:"-"`
}

// ---- network interception ----

// NetworkHookPhase says when a network rule runs.
type NetworkHookPhase = string

// Network hook phases.
const (
	NetworkHookPhaseBefore NetworkHookPhase = "before"
	NetworkHookPhaseAfter  NetworkHookPhase = "after"
)

// NetworkHookAction is what a network rule does.
type NetworkHookAction = string

// Network hook actions.
const (
	NetworkHookActionAllow  NetworkHookAction = "allow"
	NetworkHookActionBlock  NetworkHookAction = "block"
	NetworkHookActionMutate NetworkHookAction = "mutate"
)

// NetworkBodyTransform is a literal response-body replacement; on
// text/event-stream responses it applies to each `data:` line.
type NetworkBodyTransform struct {
	Find    string `json:"find"`
	Replace string `json:"replace,omitempty"`
}

// NetworkHookRule is one network interception rule. A rule with Hook set
// is answered by the SDK process through the callback socket.
type NetworkHookRule struct {
	Name    string            `json:"name,omitempty"`
	Phase   NetworkHookPhase  `json:"phase,omitempty"`
	Hosts   []string          `json:"hosts,omitempty"`
	Methods []string          `json:"methods,omitempty"`
	Path    string            `json:"path,omitempty"`
	Action  NetworkHookAction `json:"action,omitempty"`

	SetHeaders    map[string]string `json:"set_headers,omitempty"`
	DeleteHeaders []string          `json:"delete_headers,omitempty"`
	SetQuery      map[string]string `json:"set_query,omitempty"`
	DeleteQuery   []string          `json:"delete_query,omitempty"`
	RewritePath   string            `json:"rewrite_path,omitempty"`

	SetResponseHeaders    map[string]string      `json:"set_response_headers,omitempty"`
	DeleteResponseHeaders []string               `json:"delete_response_headers,omitempty"`
	BodyReplacements      []NetworkBodyTransform `json:"body_replacements,omitempty"`
	TimeoutMS             int                    `json:"timeout_ms,omitempty"`

	// Hook runs in the SDK process for requests the rule matches.
	Hook NetworkHookFunc `json:"-"`
}

// NetworkInterceptionConfig holds the network rules.
type NetworkInterceptionConfig struct {
	Rules []NetworkHookRule `json:"rules,omitempty"`
}

// NetworkHookRequest is what a callback hook sees of the intercepted request
// (and, in the after phase, of the response).
type NetworkHookRequest struct {
	Phase  NetworkHookPhase
	Host   string
	Method string
	Path   string

	Query          map[string]string
	RequestHeaders map[string][]string

	StatusCode      int
	ResponseHeaders map[string][]string
	IsSSE           bool
}

// NetworkHookResult is a callback hook's decision. nil means no change.
type NetworkHookResult struct {
	Action   NetworkHookAction
	Request  *NetworkHookRequestMutation
	Response *NetworkHookResponseMutation
}

// NetworkHookRequestMutation changes the outgoing request.
type NetworkHookRequestMutation struct {
	// Headers, when non-nil, replaces the whole header map (Host excepted).
	Headers map[string][]string
	// Query, when non-nil, replaces the whole query.
	Query map[string]string
	// Path, when non-empty, rewrites the path.
	Path string
}

// NetworkHookResponseMutation changes the response.
type NetworkHookResponseMutation struct {
	// Headers, when non-nil, replaces the whole response header map.
	Headers          map[string][]string
	BodyReplacements []NetworkBodyTransform
	// SetBody, when non-nil, replaces the whole body.
	SetBody []byte
}

// NetworkHookFunc runs in the SDK process. Returning an error makes the host
// block the request (fail closed).
type NetworkHookFunc func(ctx context.Context, req NetworkHookRequest) (*NetworkHookResult, error)

// ---- VFS interception ----

// VFSInterceptionConfig holds VFS rules.
type VFSInterceptionConfig struct {
	EmitEvents bool          `json:"emit_events,omitempty"`
	Rules      []VFSHookRule `json:"rules,omitempty"`
}

// VFSHookPhase says when a VFS rule runs.
type VFSHookPhase = string

// VFS hook phases.
const (
	VFSHookPhaseBefore VFSHookPhase = "before"
	VFSHookPhaseAfter  VFSHookPhase = "after"
)

// VFSHookAction is what a VFS rule does.
type VFSHookAction = string

// VFS hook actions.
const (
	VFSHookActionAllow VFSHookAction = "allow"
	VFSHookActionBlock VFSHookAction = "block"
)

// VFSHookOp names a file operation.
type VFSHookOp = string

// VFS operations.
const (
	VFSHookOpStat      VFSHookOp = "stat"
	VFSHookOpReadDir   VFSHookOp = "readdir"
	VFSHookOpOpen      VFSHookOp = "open"
	VFSHookOpCreate    VFSHookOp = "create"
	VFSHookOpMkdir     VFSHookOp = "mkdir"
	VFSHookOpChmod     VFSHookOp = "chmod"
	VFSHookOpRemove    VFSHookOp = "remove"
	VFSHookOpRemoveAll VFSHookOp = "remove_all"
	VFSHookOpRename    VFSHookOp = "rename"
	VFSHookOpSymlink   VFSHookOp = "symlink"
	VFSHookOpReadlink  VFSHookOp = "readlink"
	VFSHookOpRead      VFSHookOp = "read"
	VFSHookOpWrite     VFSHookOp = "write"
	VFSHookOpClose     VFSHookOp = "close"
	VFSHookOpSync      VFSHookOp = "sync"
	VFSHookOpTruncate  VFSHookOp = "truncate"
)

// VFSHookRule is one VFS rule. Without a callback it is sent to the server;
// with one it runs in the SDK process:
//   - Hook / DangerousHook (phase after): on `event` file notifications;
//   - MutateHook (phase before): rewrites WriteFile content;
//   - ActionHook (phase before): allows or blocks WriteFile/ReadFile/ListFiles.
type VFSHookRule struct {
	Name      string        `json:"name,omitempty"`
	Phase     VFSHookPhase  `json:"phase,omitempty"`
	Ops       []VFSHookOp   `json:"ops,omitempty"`
	Path      string        `json:"path,omitempty"` // filepath.Match glob on the full guest path
	Action    VFSHookAction `json:"action,omitempty"`
	TimeoutMS int           `json:"timeout_ms,omitempty"`

	Hook          VFSHookFunc          `json:"-"`
	DangerousHook VFSDangerousHookFunc `json:"-"`
	MutateHook    VFSMutateHookFunc    `json:"-"`
	ActionHook    VFSActionHookFunc    `json:"-"`
}

// VFSHookEvent is a file event reported by the server.
type VFSHookEvent struct {
	Op   VFSHookOp
	Path string
	Size int64
	Mode uint32
	UID  int
	GID  int
}

// VFSHookFunc runs after a matching file event. Its error is ignored.
// While safe hooks run, further events do not re-trigger them.
type VFSHookFunc func(ctx context.Context, event VFSHookEvent) error

// VFSDangerousHookFunc gets the client and may re-trigger itself.
type VFSDangerousHookFunc func(ctx context.Context, client *Client, event VFSHookEvent) error

// VFSMutateRequest describes a WriteFile about to be sent.
type VFSMutateRequest struct {
	Path string
	Size int
	Mode uint32
	UID  int
	GID  int
}

// VFSMutateHookFunc returns replacement content (nil keeps it).
type VFSMutateHookFunc func(ctx context.Context, req VFSMutateRequest) ([]byte, error)

// VFSActionRequest describes a file operation about to be sent.
type VFSActionRequest struct {
	Op   VFSHookOp
	Path string
	Size int
	Mode uint32
	UID  int
	GID  int
}

// VFSActionHookFunc decides allow or block.
type VFSActionHookFunc func(ctx context.Context, req VFSActionRequest) VFSHookAction
