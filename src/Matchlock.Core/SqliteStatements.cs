using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Matchlock.Core;

/// <summary>
/// The few statement helpers both SQLite stores (images, VM state) use: parameterised commands
/// (never string-built SQL with values), and the UTC round-trip time format they store.
/// </summary>
internal static class SqliteStatements
{
    public static SqliteCommand Command(this SqliteConnection connection, string sql, SqliteTransaction? tx, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    public static void Execute(this SqliteConnection connection, string sql, SqliteTransaction? tx, params (string Name, object? Value)[] parameters)
    {
        using var command = connection.Command(sql, tx, parameters);
        command.ExecuteNonQuery();
    }

    public static string FormatTime(DateTimeOffset time) => time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    public static DateTimeOffset ParseTime(string text) =>
        DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
}
