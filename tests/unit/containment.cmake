# recover/containment and what it stands on (lib/cgroup writes, lib/reaper):
# real cgroups of this host (skipped without a writable v2 tree) and real
# orphans.
recoverd_unit_test(test_containment)
