# Homebrew formula for xecr. Not in homebrew-core yet: put it in a tap (see README.md).
#
# A maintainer fills in, for each release:
# - url: the release's sdist on PyPI. PyPI serves every sdist at
#   https://files.pythonhosted.org/packages/source/<first letter>/<name>/<name>-<version>.tar.gz;
#   only the version changes from one release to the next.
# - sha256: that file's SHA-256, the line for xecr-VERSION.tar.gz in the release's
#   SHA256SUMS (or `shasum -a 256 xecr-VERSION.tar.gz`). The value below is a
#   placeholder, not a checksum: brew refuses the formula until it is replaced.
# - the resource blocks, one per Python dependency with its own url and sha256:
#   `brew update-python-resources xecr` writes them from the sdist's requirements.
class Xecr < Formula
  include Language::Python::Virtualenv

  desc "Docker credential helper and login daemon for Amazon ECR across AWS accounts"
  homepage "https://pypi.org/project/xecr/"
  url "https://files.pythonhosted.org/packages/source/x/xecr/xecr-0.1.0.tar.gz"
  sha256 "REPLACE-WITH-THE-SDIST-SHA256-FROM-SHA256SUMS"
  license "Apache-2.0"

  depends_on "python@3.12"

  # resource "boto3" do
  #   url "..."
  #   sha256 "..."
  # end
  # ... one block per dependency (boto3, botocore, keyring, platformdirs, filelock,
  # tomlkit, prometheus_client and theirs): `brew update-python-resources xecr`.

  def install
    virtualenv_install_with_resources
  end

  # `brew services start xecr`: the login daemon for the user, as
  # packaging/launchd/com.xecr.daemon.plist does by hand.
  service do
    run [opt_bin/"xecr", "daemon"]
    keep_alive successful_exit: false
    log_path var/"log/xecr.log"
    error_log_path var/"log/xecr.log"
  end

  test do
    assert_match "xecr #{version}", shell_output("#{bin}/xecr --version")
    # A registry that is not Amazon ECR is not xecr's: the helper gives Docker's
    # "not found" answer, exit 1, without any AWS call or credentials.
    output = pipe_output("#{bin}/docker-credential-xecr get", "registry.example.com", 1)
    assert_equal "credentials not found in native keychain\n", output
  end
end
