// Command minio-admin manages MinIO users and policies through MinIO's admin API
// (madmin-go, the client `mc admin` uses). The simulation needs it because what a
// consumer may do in MinIO is decided by the policies of the user it logs in as (MinIO
// applies bucket policies to anonymous requests only, and its root user to nothing).
//
// Usage:
//
//	minio-admin HOST:PORT users < lines "ACCESS_KEY SECRET_KEY POLICY[,POLICY...]"
//	minio-admin HOST:PORT policy NAME < policy.json
//
// users: each user is created or its secret set, enabled, and given exactly these canned
// policies. policy: the canned policy NAME is created or replaced with the IAM policy
// document on standard input. The root credentials come from MINIO_ROOT_USER and
// MINIO_ROOT_PASSWORD (never from the command line). Prints one line per change, never
// a secret.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/minio/madmin-go/v3"
)

func main() {
	if len(os.Args) < 3 || (os.Args[2] == "users") != (len(os.Args) == 3) || (os.Args[2] != "users" && os.Args[2] != "policy") {
		fmt.Fprintln(os.Stderr, "usage: minio-admin HOST:PORT users < lines \"ACCESS_KEY SECRET_KEY POLICY[,POLICY...]\"\n       minio-admin HOST:PORT policy NAME < policy.json")
		os.Exit(2)
	}
	adm, err := madmin.New(os.Args[1], os.Getenv("MINIO_ROOT_USER"), os.Getenv("MINIO_ROOT_PASSWORD"), false)
	if err != nil {
		fmt.Fprintf(os.Stderr, "minio-admin: %v\n", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if os.Args[2] == "policy" {
		doc, err := io.ReadAll(os.Stdin)
		if err == nil {
			err = adm.AddCannedPolicy(ctx, os.Args[3], doc)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "minio-admin: policy %s: %v\n", os.Args[3], err)
			os.Exit(1)
		}
		fmt.Printf("policy %s: set\n", os.Args[3])
		return
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			fmt.Fprintln(os.Stderr, "minio-admin: an input line is not ACCESS_KEY SECRET_KEY POLICY[,POLICY...]")
			os.Exit(2)
		}
		if err := adm.AddUser(ctx, f[0], f[1]); err != nil {
			fmt.Fprintf(os.Stderr, "minio-admin: user %s: %v\n", f[0], err)
			os.Exit(1)
		}
		if err := adm.SetPolicy(ctx, f[2], f[0], false); err != nil {
			fmt.Fprintf(os.Stderr, "minio-admin: policy %s for user %s: %v\n", f[2], f[0], err)
			os.Exit(1)
		}
		fmt.Printf("user %s: enabled, policy %s\n", f[0], f[2])
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "minio-admin: reading users: %v\n", err)
		os.Exit(1)
	}
}
