package sdk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"
)

// WriteFile writes content to path in the sandbox with mode 0644.
func (c *Client) WriteFile(ctx context.Context, path string, content []byte) error {
	return c.WriteFileMode(ctx, path, content, 0o644)
}

// WriteFileMode writes content to path with the given permission bits
// (missing parent directories are created 0755 by the server).
func (c *Client) WriteFileMode(ctx context.Context, path string, content []byte, mode uint32) error {
	if err := c.applyActionHooks(ctx, VFSHookOpWrite, path, len(content), mode); err != nil {
		return err
	}
	content, err := c.applyMutateHooks(ctx, path, content, mode)
	if err != nil {
		return err
	}
	_, err = c.sendRequestCtx(ctx, "write_file", map[string]interface{}{
		"path":    path,
		"content": base64.StdEncoding.EncodeToString(content),
		"mode":    mode,
	}, nil)
	return err
}

// ReadFile returns the content of a regular file in the sandbox.
func (c *Client) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := c.applyActionHooks(ctx, VFSHookOpRead, path, 0, 0); err != nil {
		return nil, err
	}
	result, err := c.sendRequestCtx(ctx, "read_file", map[string]interface{}{"path": path}, nil)
	if err != nil {
		return nil, err
	}
	var r struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return nil, wrapErr(ErrParseReadResult, err)
	}
	data, err := base64.StdEncoding.DecodeString(r.Content)
	if err != nil {
		return nil, wrapErr(ErrParseReadResult, err)
	}
	return data, nil
}

// ListFiles lists the entries of a directory in the sandbox.
func (c *Client) ListFiles(ctx context.Context, path string) ([]FileInfo, error) {
	if err := c.applyActionHooks(ctx, VFSHookOpReadDir, path, 0, 0); err != nil {
		return nil, err
	}
	result, err := c.sendRequestCtx(ctx, "list_files", map[string]interface{}{"path": path}, nil)
	if err != nil {
		return nil, err
	}
	var r struct {
		Files []struct {
			Name    *string `json:"name"`
			Size    *int64  `json:"size"`
			Mode    *uint32 `json:"mode"`
			ModTime string  `json:"mod_time"`
			IsDir   *bool   `json:"is_dir"`
		} `json:"files"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return nil, wrapErr(ErrParseListResult, err)
	}
	files := make([]FileInfo, 0, len(r.Files))
	for _, f := range r.Files {
		if f.Name == nil || f.Size == nil || f.Mode == nil || f.IsDir == nil {
			return nil, withDetail(ErrParseListResult, ": entry lacks name, size, mode or is_dir")
		}
		fi := FileInfo{Name: *f.Name, Size: *f.Size, Mode: *f.Mode, IsDir: *f.IsDir}
		if f.ModTime != "" {
			if t, err := time.Parse(time.RFC3339Nano, f.ModTime); err == nil {
				fi.ModTime = t
			}
		}
		files = append(files, fi)
	}
	return files, nil
}
