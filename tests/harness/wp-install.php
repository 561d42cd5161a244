<?php
// wp-install.php SITE_DIR: install WordPress into its database (no browser), with the
// site URL from $WP_URL and one published post titled $WP_POST_TITLE.
define('WP_INSTALLING', true);
$url = getenv('WP_URL');
$parts = parse_url($url);
$_SERVER['HTTP_HOST'] = $parts['host'] . ':' . $parts['port'];
$_SERVER['REQUEST_URI'] = '/';
require $argv[1] . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$result = wp_install('tend test site', 'admin', 'admin@example.test', true, '', 'admin-pw-' . mt_rand());
update_option('siteurl', $url);
update_option('home', $url);
$id = wp_insert_post(array(
  'post_title' => getenv('WP_POST_TITLE'),
  'post_content' => 'Written by the tend test harness.',
  'post_status' => 'publish',
), true);
if (is_wp_error($id)) { fwrite(STDERR, $id->get_error_message() . "\n"); exit(1); }
echo "installed, post $id\n";
