#!/bin/sh
# Installs ArgoCD and its root Application. Called by terraform_data.argocd; inputs come in
# through the environment so the token never appears on a command line.
set -eu

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
umask 077

printf '%s' "$KUBE_CA_DATA" | base64 -d > "$workdir/ca.crt"
cat > "$workdir/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: target
  cluster:
    server: ${KUBE_SERVER}
    certificate-authority: ${workdir}/ca.crt
users:
- name: terraform
  user:
    token: ${KUBE_TOKEN}
contexts:
- name: target
  context: {cluster: target, user: terraform}
current-context: target
KUBECONFIG
export KUBECONFIG="$workdir/kubeconfig"

"$KUBECTL" create namespace "$ARGOCD_NAMESPACE" --dry-run=client -o yaml | "$KUBECTL" apply -f -
"$KUBECTL" apply --server-side --force-conflicts -n "$ARGOCD_NAMESPACE" -f "$ARGOCD_INSTALL_URL"
"$KUBECTL" wait --for condition=established --timeout="$ARGOCD_READY_TIMEOUT" \
  crd/applications.argoproj.io crd/applicationsets.argoproj.io
"$KUBECTL" -n "$ARGOCD_NAMESPACE" rollout status deployment/argocd-repo-server --timeout="$ARGOCD_READY_TIMEOUT"
printf '%s' "$ARGOCD_BOOTSTRAP" | "$KUBECTL" apply --server-side --force-conflicts -f -
