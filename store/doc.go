// Package store keeps ZeroTask's results and queued tasks.
package store
